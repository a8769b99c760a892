/**
 * The LwM2M server, wired from its parts (Leshan's split; this class is the one wiring point):
 *
 * - `registration/`: the registration interface on request objects, the in-memory registry, the durable store, the
 *   provisioning gate;
 * - `observation/`: Write-Attributes and Observe per resource, restored after a restart;
 * - `deviceRequests`: Read, Write, Execute for the internal API;
 * - `twinSync`: every twin write, from registration events and observed values;
 * - `send/`: LwM2M 1.1 Send (`POST /dp`);
 * - `security/` (given by the caller): each device's provisioned security, which the gate checks (a PSK device only
 *   over DTLS with its own identity; requests, Sends and re-observes of a DTLS registration only over its session).
 *
 * This file adds the CoAP side of the registration interface (`/rd`, Uri-Query, link-format payload, response codes)
 * and of Send, and the rules that tie the parts together: a Register's twin is connected before its resources are
 * observed; an Update re-observes what is not observed yet; an Update from a new address moves the device's CoAP
 * state there and observes everything anew (its old observations may have met RST), as does a notification from a
 * registered address that matches no observation; of several Server object instances, the one whose Short Server
 * ID is this server's is read once; a registration whose twin no longer belongs to it ends.
 */
import { CatalogEntry, ObservationDefaults, TWIN_PROPERTIES } from '../shared/catalog';
import { DEVICE_ID_PATTERN } from '../shared/deviceId';
import { announcedProperties } from '../shared/twin';
import { TwinStore } from '../shared/twinStore';
import { CoapEndpoint, CoapTimeoutError, Peer, ResponseSpec, peerKey } from './coap/coapEndpoint';
import {
  CoapMessage,
  Code,
  OptionNumber,
  isSuccessCode,
  readStringOptions,
  readUintOption,
  stringOption,
  uintOption,
  uriPath,
} from './coap/coapMessage';
import { DeviceRequests } from './deviceRequests';
import { EventSink } from './eventQueue';
import { Logger, ThrottledWarnings } from './logger';
import { acceptFor } from './lwm2m/acceptFor';
import { ContentFormat, decodePayload } from './lwm2m/contentFormat';
import { RegistrationLinks, parseLinkFormat, registrationLinks } from './lwm2m/linkFormat';
import { Lwm2mPayloadError } from './lwm2m/lwm2mPayloadError';
import { UnsupportedVersionError, parseRegisterParams, parseUpdateParams } from './lwm2m/registrationParams';
import { SERVER_OBJECT_ID, catalogObjects, serverInstanceCandidates } from './lwm2m/resourcePath';
import { tlvInteger } from './lwm2m/tlv';
import { ObservationService } from './observation/observationService';
import { AwakeTracker, isQueueMode } from './queueMode';
import { ReadingsSink, ReadingsWriter } from './readingsWriter';
import { DeviceSecurity, ProvisioningGate } from './registration/provisioningGate';
import { DeviceAddress, Registration, TransportName, addressKey, sessionOwnedBy } from './registration/registration';
import { EndCause, RegistrationHandler, RegistrationResponse } from './registration/registrationHandler';
import { RegistrationRegistry } from './registration/registrationRegistry';
import { RegistrationStore } from './registration/registrationStore';
import { SendHandler } from './send/sendHandler';
import { TwinSync } from './twinSync';

export interface Lwm2mServerOptions {
  store: TwinStore;
  registrations: RegistrationStore;
  /** Where observed values are written, and how they are batched (see `ReadingsWriter`). */
  readings: { sink: ReadingsSink; batchMs: number; maxConcurrentWrites: number };
  /** deviceConnected / deviceDisconnected, once the twin says so (default: none). */
  events?: EventSink;
  log: Logger;
  now: () => number;
  instanceId: string;
  connectorUrl: string;
  observation: ObservationDefaults;
  /** Bound on each request the server itself sends (write-attributes, observe), ms. */
  deviceTimeoutMs: number;
  /**
   * How each device was provisioned (its security mode and PSK identity), from the credentials the Functions app
   * writes (connector/security/). Absent (tests, benchmarks): a device is provisioned when its twin exists, without
   * security.
   */
  credentials?: { securityOf(deviceId: string): DeviceSecurity | undefined };
  /**
   * This server's Short Server ID on devices (`/1/x/0`): picks this server's instance of a device with several Server
   * object instances. Absent: the lowest instance.
   */
  shortServerId?: number;
  /** How long a queue-mode device stays reachable after its last message, ms (`Connector__awakeWindowSeconds`). */
  awakeWindowMs: number;
  /**
   * A queue-mode device sent Register or Update (its twin's `awakeUntil` is written first): the jobs waiting for it
   * may run now (main.ts: shared/waitingJobs.ts `resumeWaitingJobs`). Default: none.
   */
  onDeviceAwake?: (deviceId: string) => void;
}

/**
 * How long a DTLS session outlives its De-register, ms: long enough for the 2.02 and the answers to a few
 * retransmissions of the DELETE (ACK_TIMEOUT is 2-3 s), short enough to free the session soon.
 */
const DEREGISTERED_SESSION_LINGER_MS = 5_000;

/** The registration interface's path (`/rd`). */
const REGISTRATION_PATH = 'rd';
/** The Send operation's path (`/dp`, LwM2M 1.1). */
const SEND_PATH = 'dp';
/** Resource 0 of the Server object: the Short Server ID. */
const SHORT_SERVER_ID_RESOURCE = 0;

const text = (message: string) => Buffer.from(message, 'utf8');

export class Lwm2mServer {
  readonly registry = new RegistrationRegistry();
  readonly gate: ProvisioningGate;
  readonly devices: DeviceRequests;
  readonly writer: ReadingsWriter;
  private readonly registrations: RegistrationHandler;
  private readonly observations: ObservationService;
  private readonly twins: TwinSync;
  private readonly awake: AwakeTracker;
  private readonly onDeviceAwake?: (deviceId: string) => void;
  private readonly sends: SendHandler;
  private readonly endpoints = new Map<TransportName, CoapEndpoint>();
  private readonly warnings: ThrottledWarnings;
  private closing = false;
  /** Registrations whose twin said `connected` for them (written at Register, or restored): readings may orphan them. */
  private readonly twinConnected = new Set<string>();

  constructor(private readonly options: Lwm2mServerOptions) {
    const { log, now } = options;
    this.warnings = new ThrottledWarnings(log, now);
    const endpointFor = (registration: Registration) => this.endpoint(registration.transport);
    this.writer = new ReadingsWriter({
      ...options.readings,
      events: options.events,
      // The store refused readings because their twin is gone or re-provisioned: those registrations end. Only
      // once the twin said connected for them: a Send right after a Register may reach the store before that write.
      onOrphaned: (deviceId, registrationIds) => {
        for (const id of registrationIds) {
          if (this.twinConnected.has(id)) this.registrations.endEndpoint(deviceId, 'orphaned', id);
        }
      },
      log,
      now,
    });
    const credentials = options.credentials;
    this.gate = new ProvisioningGate({
      // Credentials are in memory: a refusal costs nothing to look up again, so none is remembered (a device
      // provisioned a moment ago gets in at its next try, not 10 s later). Twin reads are remembered.
      ...(credentials && { negativeTtlMs: 0 }),
      lookup: credentials
        ? async (endpoint) => credentials.securityOf(endpoint)
        : async (endpoint) =>
            DEVICE_ID_PATTERN.test(endpoint) && (await options.store.get(endpoint)) !== undefined
              ? { mode: 'none' }
              : undefined,
      now,
    });
    this.awake = new AwakeTracker(options.awakeWindowMs, now);
    this.onDeviceAwake = options.onDeviceAwake;
    this.twins = new TwinSync({
      awake: this.awake,
      store: options.store,
      writer: this.writer,
      events: options.events,
      observation: options.observation,
      connectorUrl: options.connectorUrl,
      log,
      now,
    });
    this.observations = new ObservationService({
      registry: this.registry,
      endpointFor,
      listener: this.twins,
      onObservationsChanged: (registration) => this.registrations.save(registration),
      observation: options.observation,
      deviceTimeoutMs: options.deviceTimeoutMs,
      log,
      now,
    });
    this.registrations = new RegistrationHandler({
      registry: this.registry,
      store: options.registrations,
      authorize: (request, known) => this.gate.authorize(request, known),
      connectorId: options.instanceId,
      log,
      now,
      listener: {
        registered: (registration) => {
          void this.findServerInstance(registration).then(async () => {
            const announced = announcedEntries(registration);
            if (!(await this.twins.registered(registration, announced))) {
              // The twin is gone (deprovisioned meanwhile) or could not be written: the registration cannot sync.
              this.registrations.endEndpoint(registration.endpoint, 'orphaned', registration.id);
              return;
            }
            if (this.registry.holds(registration)) this.twinConnected.add(registration.id);
            this.deviceAwake(registration);
            await this.observations.observe(registration, announced);
          });
        },
        restored: (registration) => {
          this.twinConnected.add(registration.id);
          this.observations.restore(registration);
        },
        updated: (registration, change) => {
          void this.twins.renewed(registration).then(() => this.deviceAwake(registration));
          if (change.previousAddress) this.deviceMoved(registration, change.previousAddress);
          else void this.updateObservations(registration, change.objectsChanged);
        },
        ended: (registration, cause, at) => this.registrationEnded(registration, cause, at),
      },
    });
    this.devices = new DeviceRequests({
      registry: this.registry,
      endpointFor,
      now,
      closing: () => this.closing,
      awake: this.awake,
    });
    this.sends = new SendHandler({ listener: this.twins, log, now });
  }

  /**
   * Serves the registration interface on `endpoint` (plain CoAP). Registrations loaded by `restore` must find their
   * endpoint attached first.
   */
  attach(transport: TransportName, endpoint: CoapEndpoint): void {
    this.endpoints.set(transport, endpoint);
  }

  /**
   * Takes up registrations loaded from the store (see `RegistrationHandler.restore`). Call it after `attach` and
   * before the endpoints deliver datagrams (synchronously after binding), so no notification meets an unknown token.
   */
  restore(loaded: readonly Registration[]): { restored: number; expired: number } {
    // A registration over a transport this start does not serve (plain CoAP turned off) cannot be reached: it ends.
    const usable = loaded.map((registration) =>
      this.endpoints.has(registration.transport) ? registration : { ...registration, expiresAt: 0 },
    );
    return this.registrations.restore(usable);
  }

  /** A request arriving on a CoAP endpoint (its `RequestHandler`): the registration interface. */
  handleRequest(transport: TransportName) {
    return async (request: CoapMessage, peer: Peer, coap: CoapEndpoint): Promise<ResponseSpec> => {
      const path = uriPath(request);
      // The DTLS session's PSK identity (coaps); undefined on plain CoAP.
      const identity = coap.identityOf(peer);
      if (path[0] === SEND_PATH && path.length === 1) return this.send(transport, request, peer);
      if (path[0] !== REGISTRATION_PATH || path.length > 2) {
        return { code: Code.NOT_FOUND, payload: text(`no resource /${path.join('/')}`) };
      }
      if (this.closing) return { code: Code.SERVICE_UNAVAILABLE, payload: text('the server is shutting down') };
      try {
        if (path.length === 1) {
          if (request.code !== Code.POST) return { code: Code.METHOD_NOT_ALLOWED };
          const params = parseRegisterParams(readStringOptions(request, OptionNumber.URI_QUERY));
          const links = parseLinks(request);
          const response = await this.registrations.register({ ...params, links, transport, source: peer, identity });
          return this.toCoap(response, peer, params.endpoint);
        }
        const registrationId = path[1];
        if (request.code === Code.POST) {
          const params = parseUpdateParams(readStringOptions(request, OptionNumber.URI_QUERY));
          const links = request.payload.length > 0 ? parseLinks(request) : undefined;
          return this.toCoap(
            this.registrations.update({ ...params, registrationId, links, transport, source: peer, identity }),
            peer,
          );
        }
        if (request.code === Code.DELETE) {
          const deregister = { registrationId, transport, source: peer, identity };
          return this.toCoap(this.registrations.deregister(deregister), peer);
        }
        return { code: Code.METHOD_NOT_ALLOWED };
      } catch (error) {
        if (error instanceof UnsupportedVersionError) {
          return { code: Code.PRECONDITION_FAILED, payload: text(error.message) };
        }
        if (error instanceof Lwm2mPayloadError) {
          this.warnings.warn('registration request refused', { peer: peerKey(peer), reason: error.message });
          return { code: Code.BAD_REQUEST, payload: text(error.message) };
        }
        throw error;
      }
    };
  }

  /**
   * A notification on a CoAP endpoint that matched no observation (its `onUnmatchedNotification`): from a registered
   * device's address, the device observes in a context the connector lost, so its observations are made anew.
   */
  unmatchedNotification(transport: TransportName) {
    return (peer: Peer, handle: number): void => {
      const registration = this.registry.forAddress(transport, peer);
      if (!registration || this.closing || !this.ownsSession(registration)) return;
      this.observations.unknownNotification(registration, handle, announcedEntries(registration));
    };
  }

  /** Ends registrations whose lifetime ran out (called by the connector's sweep). */
  sweepExpired(): void {
    this.registrations.sweepExpired();
  }

  /**
   * Ends the device's registration now, without a twin write (deprovisioning: the twin is gone or belongs to a new
   * provisioning): its observations end (notifies get RST), De-register and Update get 4.04. Returns whether one
   * was held.
   */
  endRegistration(deviceId: string): boolean {
    const ended = this.registrations.endEndpoint(deviceId, 'deprovisioned');
    this.gate.forget(deviceId);
    return ended;
  }

  /** From now on, registrations get 5.03 and device operations fail as ConnectorUnavailable. */
  stopAccepting(): void {
    this.closing = true;
  }

  /**
   * Stops: waits for the twin and registration-store writes in flight. Registrations stay held in the store (twins
   * stay connected): a restarted connector takes them up again, and the devices notice nothing.
   */
  async close(): Promise<void> {
    this.closing = true;
    await this.twins.settled();
    await this.registrations.settled();
  }

  /** The CoAP response to a registration request (`endpoint`: the name a Register claimed, for the log). */
  private toCoap(response: RegistrationResponse, peer: Peer, endpoint?: string): ResponseSpec {
    switch (response.kind) {
      case 'created':
        return {
          code: Code.CREATED,
          options: [
            stringOption(OptionNumber.LOCATION_PATH, REGISTRATION_PATH),
            stringOption(OptionNumber.LOCATION_PATH, response.registrationId),
          ],
        };
      case 'changed':
        return { code: Code.CHANGED };
      case 'deleted':
        return { code: Code.DELETED };
      case 'notFound':
        return { code: Code.NOT_FOUND, payload: text(response.detail) };
      case 'forbidden':
        this.warnings.warn(`registration refused: ${response.detail}`, { endpoint, peer: peerKey(peer) });
        return { code: Code.FORBIDDEN, payload: text(response.detail) };
      case 'tooManyRequests':
        this.warnings.warn('registration refused: too many refused registrations from this address', {
          endpoint,
          peer: peerKey(peer),
        });
        return {
          code: Code.TOO_MANY_REQUESTS,
          options: [uintOption(OptionNumber.MAX_AGE, response.retryAfterSeconds)],
          payload: text(response.detail),
        };
    }
  }

  /** `POST /dp` (LwM2M 1.1 Send): from the address of a registered device only (Leshan: 4.00 otherwise). */
  private send(transport: TransportName, request: CoapMessage, peer: Peer): ResponseSpec {
    if (request.code !== Code.POST) return { code: Code.METHOD_NOT_ALLOWED };
    if (this.closing) return { code: Code.SERVICE_UNAVAILABLE, payload: text('the server is shutting down') };
    const found = this.registry.forAddress(transport, peer);
    // Over DTLS the session at the address must be the registered device's own (another may have the address now).
    const registration = found && this.ownsSession(found) ? found : undefined;
    if (!registration) {
      this.warnings.warn('Send refused: no registration from this address', { peer: peerKey(peer) });
      return { code: Code.BAD_REQUEST, payload: text('no registration from this address: register first') };
    }
    const format = readUintOption(request, OptionNumber.CONTENT_FORMAT);
    const outcome = this.sends.handle(registration, format, request.payload);
    switch (outcome.kind) {
      case 'changed':
        return { code: Code.CHANGED };
      case 'malformed':
        return { code: Code.BAD_REQUEST, payload: text(outcome.detail) };
      case 'unsupportedFormat':
        return { code: Code.UNSUPPORTED_CONTENT_FORMAT, payload: text(outcome.detail) };
    }
  }

  /**
   * The device's Update came from a new address (NAT rebinding, a new port): its CoAP state follows it, and its
   * observations are made anew (notifications it sent from there before the Update met RST, so it may have cancelled
   * them); its twin turns fresh again with the observe responses.
   */
  private deviceMoved(registration: Registration, from: DeviceAddress): void {
    this.endpoint(registration.transport).movePeer(from, registration.address);
    this.options.log.info('device moved; observing again', {
      endpoint: registration.endpoint,
      registrationId: registration.id,
      from: addressKey(from),
      to: addressKey(registration.address),
    });
    void this.findServerInstance(registration).then(async () => {
      const announced = announcedEntries(registration);
      const missing = announced.filter((entry) => registration.observations[entry.name] === undefined);
      if (missing.length > 0) await this.twins.propertiesAdded(registration, missing);
      await this.observations.reobserve(registration, announced);
    });
  }

  /**
   * Settles which Server object instance is this server's when the device announced several and none was chosen
   * yet: reads each one's Short Server ID (`/1/x/0`) once, the first alone until the device answers, and keeps the
   * one that matches `shortServerId` (else, or when the device does not answer, the lowest). Never rejects.
   */
  private async findServerInstance(registration: Registration): Promise<void> {
    const candidates = serverInstanceCandidates(registration.objects);
    if (registration.serverInstanceId !== undefined || candidates.length < 2) return;
    const wanted = this.options.shortServerId;
    let chosen = candidates[0];
    if (wanted !== undefined) {
      for (const instanceId of candidates) {
        const shortServerId = await this.readShortServerId(registration, instanceId);
        if (shortServerId === wanted) {
          chosen = instanceId;
          break;
        }
        if (shortServerId === 'silent') break;
      }
    }
    if (!this.registry.holds(registration)) return;
    registration.serverInstanceId = chosen;
    this.registrations.save(registration);
    this.options.log.info('Server object instance chosen', {
      endpoint: registration.endpoint,
      candidates: candidates.join(','),
      serverInstanceId: chosen,
    });
  }

  /** `/1/{instanceId}/0` on the device, or 'silent' (no answer) or undefined (refused, unreadable). */
  private async readShortServerId(
    registration: Registration,
    instanceId: number,
  ): Promise<number | 'silent' | undefined> {
    const devicePath = `/${SERVER_OBJECT_ID}/${instanceId}/${SHORT_SERVER_ID_RESOURCE}`;
    const segments = [
      ...(registration.rootPath === '' ? [] : registration.rootPath.split('/')),
      ...devicePath.split('/').slice(1),
    ];
    try {
      const response = await this.endpoint(registration.transport).request(
        registration.address,
        {
          code: Code.GET,
          options: [
            ...segments.map((segment) => stringOption(OptionNumber.URI_PATH, segment)),
            uintOption(OptionNumber.ACCEPT, acceptFor(registration)),
          ],
        },
        { timeoutMs: this.options.deviceTimeoutMs },
      );
      if (!isSuccessCode(response.code)) return undefined;
      const format = readUintOption(response, OptionNumber.CONTENT_FORMAT);
      const found = decodePayload(format, response.payload, devicePath).find((v) => v.path === devicePath)?.value;
      if (found?.type === 'number') return found.number;
      if (found?.type === 'text') return Number(found.text);
      if (found?.type === 'bytes') return tlvInteger(found.bytes);
      return undefined;
    } catch (error) {
      return error instanceof CoapTimeoutError ? 'silent' : undefined;
    }
  }

  /** After a queue-mode device's Register or Update reached its twin: its waiting jobs may run. */
  private deviceAwake(registration: Registration): void {
    if (this.closing || !isQueueMode(registration.binding) || !this.registry.holds(registration)) return;
    this.onDeviceAwake?.(registration.endpoint);
  }

  private endpoint(transport: TransportName): CoapEndpoint {
    const endpoint = this.endpoints.get(transport);
    if (!endpoint) throw new Error(`no CoAP endpoint attached for ${transport}`);
    return endpoint;
  }

  /** After an Update: cancel what the device no longer announces; observe what it announces and is not observed. */
  private async updateObservations(registration: Registration, objectsChanged: boolean): Promise<void> {
    if (objectsChanged) await this.findServerInstance(registration);
    const announced = announcedEntries(registration);
    if (objectsChanged) {
      const names = new Set(announced.map((entry) => entry.name));
      const gone = Object.keys(registration.observations).filter((name) => !names.has(name));
      this.observations.cancel(registration, gone);
      if (gone.length > 0) this.registrations.save(registration);
    }
    const missing = announced.filter((entry) => registration.observations[entry.name] === undefined);
    if (missing.length === 0) return;
    await this.twins.propertiesAdded(registration, missing);
    await this.observations.observe(registration, missing);
  }

  /** Ends the session at a registration's address, unless a registration (a new one) is held there again. */
  private endSessionUnlessRegistered(registration: Registration): void {
    const current = this.registry.forEndpoint(registration.endpoint);
    if (current && addressKey(current.address) === addressKey(registration.address)) return;
    this.endpoints.get(registration.transport)?.endSession(registration.address);
  }

  /** Whether the session at the registration's address is its own device's (see `sessionOwnedBy`). */
  private ownsSession(registration: Registration): boolean {
    const endpoint = this.endpoints.get(registration.transport);
    return endpoint !== undefined && sessionOwnedBy(registration, endpoint);
  }

  private registrationEnded(registration: Registration, cause: EndCause, at: number): void {
    this.twinConnected.delete(registration.id);
    const endpoint = this.endpoints.get(registration.transport);
    // The peer's pending requests fail and its observations end (its next notification gets RST).
    endpoint?.forgetPeer(registration.address, `registration ended: ${cause}`);
    // A DTLS session belongs to its registration: it ends with it (replaced: the new registration may be on it). After
    // a De-register it lingers a moment, so the 2.02 (and its repeat for a retransmitted DELETE) goes out over it.
    if (cause === 'deregistered') {
      setTimeout(() => this.endSessionUnlessRegistered(registration), DEREGISTERED_SESSION_LINGER_MS).unref();
    } else if (cause !== 'replaced') {
      endpoint?.endSession(registration.address);
    }
    if (cause === 'deregistered' || cause === 'expired') void this.twins.disconnected(registration, at);
  }
}

/** The catalog properties the registration announces (its own Server object instance seen as `/1/0`). */
function announcedEntries(registration: Registration): CatalogEntry[] {
  return announcedProperties(TWIN_PROPERTIES, catalogObjects(registration, registration.objects));
}

function parseLinks(request: CoapMessage): RegistrationLinks {
  const format = readUintOption(request, OptionNumber.CONTENT_FORMAT);
  if (format !== undefined && format !== ContentFormat.LINK_FORMAT) {
    throw new Lwm2mPayloadError(`registration payload must be link-format (40); got content format ${format}`);
  }
  let body: string;
  try {
    body = new TextDecoder('utf-8', { fatal: true }).decode(request.payload);
  } catch {
    throw new Lwm2mPayloadError('registration payload is not valid UTF-8');
  }
  return registrationLinks(parseLinkFormat(body));
}
