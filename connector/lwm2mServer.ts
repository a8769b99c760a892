/**
 * The LwM2M server: the registration interface (Register, Update, De-register, lifetime expiry), observation of
 * every announced catalog resource with the configured pmin/pmax, notifications into readings, and the device
 * operations (read, write, execute) the internal API exposes.
 *
 * Twin writes about a device's connection run one after another per device, in event order (so a quick
 * register-deregister never ends "connected"); readings go through the `ReadingsWriter`.
 */
import { randomBytes } from 'node:crypto';
import { CatalogEntry, ObservationDefaults, PropertyValue, TWIN_PROPERTIES, observationFor } from '../shared/catalog';
import { DEVICE_ID_PATTERN } from '../shared/deviceId';
import { TwinError } from '../shared/errors';
import { TwinDocument, announcedProperties } from '../shared/twin';
import { connectionEvent } from '../shared/twinEvents';
import { TwinStore } from '../shared/twinStore';
import {
  CoapCancelledError,
  CoapEndpoint,
  CoapResetError,
  CoapTimeoutError,
  NotificationListener,
  OutgoingRequest,
  Peer,
  ResponseSpec,
  observationHandle,
  observeOption,
  peerKey,
} from './coap/coapEndpoint';
import {
  CoapMessage,
  Code,
  OptionNumber,
  formatCode,
  isSuccessCode,
  readStringOptions,
  readUintOption,
  stringOption,
  uintOption,
  uriPath,
} from './coap/coapMessage';
import { ContentFormat, decodePropertyValue, encodeTextValue } from './lwm2m/contentFormat';
import { RegistrationLinks, parseLinkFormat, registrationLinks } from './lwm2m/linkFormat';
import { Lwm2mPayloadError } from './lwm2m/lwm2mPayloadError';
import { UnsupportedVersionError, parseRegisterParams, parseUpdateParams } from './lwm2m/registrationParams';
import { EventSink, NO_EVENTS } from './eventQueue';
import { Logger, ThrottledWarnings } from './logger';
import { ReadingsWriter } from './readingsWriter';
import { Registration, RegistrationRegistry } from './registrationRegistry';
import { connectedTwin, disconnectedTwin, observedTwin, renewedTwin, unsupportedPropertyTwin } from './twinConnection';

export interface Lwm2mServerOptions {
  store: TwinStore;
  writer: ReadingsWriter;
  /** deviceConnected / deviceDisconnected, once the twin says so (default: none). */
  events?: EventSink;
  log: Logger;
  now: () => number;
  instanceId: string;
  connectorUrl: string;
  observation: ObservationDefaults;
  /** Bound on each request the server itself sends (write-attributes, observe), ms. */
  deviceTimeoutMs: number;
}

export interface DeviceReadResult {
  value: PropertyValue;
  /** ISO time the value was received. */
  time: string;
}

/** The registration interface's path (`/rd`). */
const REGISTRATION_PATH = 'rd';
/** Attempts of one connection write to the twin store before it is given up (transient store errors). */
const TWIN_WRITE_ATTEMPTS = 3;
const TWIN_WRITE_RETRY_MS = 500;

const text = (message: string) => Buffer.from(message, 'utf8');

export class Lwm2mServer {
  readonly registry = new RegistrationRegistry();
  private readonly twinTasks = new Map<string, Promise<boolean>>();
  private readonly warnings: ThrottledWarnings;
  private readonly events: EventSink;
  /** Last reading time handed out per registration, ms: readings of one device get strictly increasing times. */
  private readonly lastReadingAt = new WeakMap<Registration, number>();
  private closing = false;

  constructor(private readonly options: Lwm2mServerOptions) {
    this.warnings = new ThrottledWarnings(options.log, options.now);
    this.events = options.events ?? NO_EVENTS;
  }

  /** A request arriving on `coap` (a `RequestHandler`): the registration interface. */
  readonly handleRequest = async (request: CoapMessage, peer: Peer, coap: CoapEndpoint): Promise<ResponseSpec> => {
    const path = uriPath(request);
    if (path[0] !== REGISTRATION_PATH || path.length > 2) {
      return { code: Code.NOT_FOUND, payload: text(`no resource /${path.join('/')}`) };
    }
    if (this.closing) return { code: Code.SERVICE_UNAVAILABLE, payload: text('the server is shutting down') };
    try {
      if (path.length === 1) {
        if (request.code !== Code.POST) return { code: Code.METHOD_NOT_ALLOWED };
        return await this.register(coap, request, peer);
      }
      if (request.code === Code.POST) return await this.update(path[1], request, peer);
      if (request.code === Code.DELETE) return this.deregister(path[1], peer);
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

  private async register(coap: CoapEndpoint, request: CoapMessage, peer: Peer): Promise<ResponseSpec> {
    const params = parseRegisterParams(readStringOptions(request, OptionNumber.URI_QUERY));
    const links = this.parseLinks(request);
    if (!DEVICE_ID_PATTERN.test(params.endpoint) || !(await this.options.store.get(params.endpoint))) {
      this.warnings.warn('registration refused: endpoint not provisioned', {
        endpoint: params.endpoint,
        peer: peerKey(peer),
      });
      return { code: Code.FORBIDDEN, payload: text(`endpoint ${params.endpoint} is not provisioned`) };
    }
    const previous = this.registry.forEndpoint(params.endpoint);
    if (previous) this.end(previous, 'replaced by a new registration', false);
    const now = this.options.now();
    const registration: Registration = {
      id: randomBytes(6).toString('base64url'),
      endpoint: params.endpoint,
      peer,
      coap,
      lifetime: params.lifetime,
      binding: params.binding,
      lwm2mVersion: params.lwm2mVersion,
      rootPath: links.rootPath,
      objects: links.objects,
      registeredAt: now,
      updatedAt: now,
      expiresAt: now + params.lifetime * 1000,
      observations: new Map(),
      ended: false,
    };
    this.registry.add(registration);
    this.options.log.info('device registered', {
      endpoint: registration.endpoint,
      registrationId: registration.id,
      peer: peerKey(peer),
      lifetime: registration.lifetime,
      lwm2mVersion: registration.lwm2mVersion,
      replaced: previous?.id,
    });
    const announced = this.announced(registration);
    const nowIso = new Date(now).toISOString();
    const connected = this.twinTask(registration.endpoint, (twin) =>
      connectedTwin(twin, {
        registrationId: registration.id,
        lifetime: registration.lifetime,
        binding: registration.binding,
        lwm2mVersion: registration.lwm2mVersion,
        connectorId: this.options.instanceId,
        connectorUrl: this.options.connectorUrl,
        announced,
        observation: this.options.observation,
        now: nowIso,
      }),
    );
    void connected.then((written) => {
      if (written) this.events.emit([connectionEvent(registration.endpoint, 'connected', nowIso)]);
      return this.observeAll(registration, announced);
    });
    return {
      code: Code.CREATED,
      options: [
        stringOption(OptionNumber.LOCATION_PATH, REGISTRATION_PATH),
        stringOption(OptionNumber.LOCATION_PATH, registration.id),
      ],
    };
  }

  private async update(id: string, request: CoapMessage, peer: Peer): Promise<ResponseSpec> {
    const registration = this.registry.get(id);
    if (!registration) return { code: Code.NOT_FOUND, payload: text(`no registration ${id}`) };
    const params = parseUpdateParams(readStringOptions(request, OptionNumber.URI_QUERY));
    const links = request.payload.length > 0 ? this.parseLinks(request) : undefined;
    const now = this.options.now();
    if (peerKey(peer) !== peerKey(registration.peer)) {
      // NAT rebinding or a new address: requests follow the client to where its Update came from.
      registration.coap.movePeer(registration.peer, peer);
      registration.peer = peer;
    }
    if (params.lifetime !== undefined) registration.lifetime = params.lifetime;
    if (params.binding !== undefined) registration.binding = params.binding;
    registration.updatedAt = now;
    this.registry.renew(registration, now + registration.lifetime * 1000);
    const nowIso = new Date(now).toISOString();
    void this.twinTask(registration.endpoint, (twin) =>
      renewedTwin(twin, registration.id, {
        lifetime: registration.lifetime,
        binding: registration.binding,
        now: nowIso,
      }),
    );
    if (links) this.changeObjects(registration, links, nowIso);
    return { code: Code.CHANGED };
  }

  private deregister(id: string, peer: Peer): ResponseSpec {
    const registration = this.registry.get(id);
    if (!registration) return { code: Code.NOT_FOUND, payload: text(`no registration ${id}`) };
    this.end(registration, 'deregistered', true);
    this.options.log.info('device deregistered', { endpoint: registration.endpoint, peer: peerKey(peer) });
    return { code: Code.DELETED };
  }

  /** Ends registrations whose lifetime ran out (called by the connector's sweep). */
  sweepExpired(): void {
    for (const registration of this.registry.takeExpired(this.options.now())) {
      this.options.log.info('registration expired', {
        endpoint: registration.endpoint,
        registrationId: registration.id,
        lifetime: registration.lifetime,
      });
      this.end(registration, 'lifetime expired', true);
    }
  }

  /**
   * Ends a registration: observations and queued requests dropped, and, when `disconnect`, the twin disconnected
   * (a replacement writes "connected" right after, so it skips this).
   */
  private end(registration: Registration, reason: string, disconnect: boolean): void {
    if (registration.ended) return;
    registration.ended = true;
    this.registry.remove(registration);
    registration.coap.forgetPeer(registration.peer, `registration ended: ${reason}`);
    registration.observations.clear();
    if (!disconnect) return;
    const now = new Date(this.options.now()).toISOString();
    void this.twinTask(registration.endpoint, (twin) => disconnectedTwin(twin, registration.id, now)).then(
      (written) => {
        if (written) this.events.emit([connectionEvent(registration.endpoint, 'disconnected', now)]);
      },
    );
  }

  private parseLinks(request: CoapMessage): RegistrationLinks {
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

  private announced(registration: Registration): CatalogEntry[] {
    return announcedProperties(TWIN_PROPERTIES, registration.objects);
  }

  /** An Update with a new object list: observe what is new, stop observing what is gone. */
  private changeObjects(registration: Registration, links: RegistrationLinks, now: string): void {
    const before = new Set(this.announced(registration).map((e) => e.name));
    registration.objects = links.objects;
    registration.rootPath = links.rootPath;
    const after = this.announced(registration);
    for (const [name, token] of registration.observations) {
      if (!after.some((e) => e.name === name)) {
        registration.coap.cancelObservation(token);
        registration.observations.delete(name);
      }
    }
    const added = after.filter((e) => !before.has(e.name));
    if (added.length === 0) return;
    void this.twinTask(registration.endpoint, (twin) =>
      observedTwin(twin, registration.id, added, this.options.observation, now),
    ).then(() => this.observeAll(registration, added));
  }

  // ---- observation ----

  private async observeAll(registration: Registration, entries: readonly CatalogEntry[]): Promise<void> {
    await Promise.all(entries.map((entry) => this.observe(registration, entry)));
  }

  /** Write-Attributes (pmin, pmax) then Observe, for one resource. Failures are logged, never thrown. */
  private async observe(registration: Registration, entry: CatalogEntry): Promise<void> {
    if (registration.ended) return;
    const { pmin, pmax } = observationFor(entry, this.options.observation);
    const path = this.pathOptions(registration, entry);
    try {
      const attributes = await this.send(registration, {
        code: Code.PUT,
        options: [
          ...path,
          stringOption(OptionNumber.URI_QUERY, `pmin=${pmin}`),
          stringOption(OptionNumber.URI_QUERY, `pmax=${pmax}`),
        ],
      });
      if (!isSuccessCode(attributes.code)) {
        this.warnings.warn('write-attributes refused', {
          endpoint: registration.endpoint,
          path: entry.path,
          coapCode: formatCode(attributes.code),
        });
      }
      if (registration.ended) return;
      const response = await this.send(
        registration,
        { code: Code.GET, options: [observeOption(true), ...path] },
        this.notificationListener(registration, entry),
      );
      if (registration.ended) {
        registration.coap.cancelObservation(observationHandle(response));
        return;
      }
      if (response.code === Code.NOT_FOUND) {
        this.options.log.info('resource not supported by the device', {
          endpoint: registration.endpoint,
          path: entry.path,
        });
        await this.twinTask(registration.endpoint, (twin) =>
          unsupportedPropertyTwin(twin, registration.id, entry.name),
        );
        return;
      }
      if (!isSuccessCode(response.code)) {
        this.warnings.warn('observe refused', {
          endpoint: registration.endpoint,
          path: entry.path,
          coapCode: formatCode(response.code),
        });
        return;
      }
      if (readUintOption(response, OptionNumber.OBSERVE) !== undefined) {
        registration.observations.set(entry.name, observationHandle(response));
      } else {
        this.warnings.warn('resource answered observe without observing', {
          endpoint: registration.endpoint,
          path: entry.path,
        });
      }
      this.takeReading(registration, entry, response);
    } catch (error) {
      if (registration.ended || error instanceof CoapCancelledError) return;
      this.warnings.warn('observe failed', {
        endpoint: registration.endpoint,
        path: entry.path,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  private notificationListener(registration: Registration, entry: CatalogEntry): NotificationListener {
    return new ResourceObserver(this, registration, entry);
  }

  /** A notification of `entry` on `registration` (from its `ResourceObserver`). */
  handleNotification(registration: Registration, entry: CatalogEntry, message: CoapMessage, final: boolean): void {
    if (registration.ended) return;
    if (final) registration.observations.delete(entry.name);
    if (!isSuccessCode(message.code)) {
      this.warnings.warn('observation ended by the device', {
        endpoint: registration.endpoint,
        path: entry.path,
        coapCode: formatCode(message.code),
      });
      return;
    }
    this.takeReading(registration, entry, message);
  }

  /** Decodes a response or notification into a reading for the writer; a malformed payload is logged and dropped. */
  private takeReading(registration: Registration, entry: CatalogEntry, message: CoapMessage): void {
    let value: PropertyValue;
    try {
      value = decodePropertyValue(entry, readUintOption(message, OptionNumber.CONTENT_FORMAT), message.payload);
    } catch (error) {
      this.warnings.warn('dropped unreadable notification', {
        endpoint: registration.endpoint,
        path: entry.path,
        reason: error instanceof Error ? error.message : String(error),
      });
      return;
    }
    const now = this.options.now();
    const time = Math.max(now, (this.lastReadingAt.get(registration) ?? 0) + 1);
    this.lastReadingAt.set(registration, time);
    this.options.writer.add(registration.endpoint, {
      name: entry.name,
      value,
      time: new Date(time).toISOString(),
      source: 'notify',
    });
  }

  // ---- device operations (internal API) ----

  /** Reads a resource from the device. Errors are `TwinError`s: DeviceNotConnected, DeviceTimeout, DeviceRejected. */
  async read(deviceId: string, entry: CatalogEntry, timeoutMs: number): Promise<DeviceReadResult> {
    const registration = this.connected(deviceId);
    const response = await this.deviceRequest(
      registration,
      { code: Code.GET, options: this.pathOptions(registration, entry) },
      timeoutMs,
    );
    this.expectSuccess(deviceId, entry, response);
    const time = new Date(this.options.now()).toISOString();
    try {
      return {
        value: decodePropertyValue(entry, readUintOption(response, OptionNumber.CONTENT_FORMAT), response.payload),
        time,
      };
    } catch (error) {
      throw new TwinError(
        'DeviceRejected',
        `${deviceId} sent an unreadable ${entry.name}: ${(error as Error).message}`,
        {
          coapCode: formatCode(response.code),
        },
      );
    }
  }

  async write(deviceId: string, entry: CatalogEntry, value: PropertyValue, timeoutMs: number): Promise<void> {
    const registration = this.connected(deviceId);
    const request: OutgoingRequest = {
      code: Code.PUT,
      options: [...this.pathOptions(registration, entry), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.TEXT)],
      payload: encodeTextValue(value),
    };
    this.expectSuccess(deviceId, entry, await this.deviceRequest(registration, request, timeoutMs));
  }

  async execute(deviceId: string, entry: CatalogEntry, timeoutMs: number): Promise<void> {
    const registration = this.connected(deviceId);
    const request: OutgoingRequest = { code: Code.POST, options: this.pathOptions(registration, entry) };
    this.expectSuccess(deviceId, entry, await this.deviceRequest(registration, request, timeoutMs));
  }

  private connected(deviceId: string): Registration {
    if (this.closing)
      throw new TwinError('ConnectorUnavailable', `the connector is shutting down; retry (${deviceId})`);
    const registration = this.registry.forEndpoint(deviceId);
    if (!registration) {
      throw new TwinError('DeviceNotConnected', `${deviceId} holds no registration with this connector instance`);
    }
    return registration;
  }

  private async deviceRequest(
    registration: Registration,
    request: OutgoingRequest,
    timeoutMs: number,
  ): Promise<CoapMessage> {
    try {
      return await registration.coap.request(registration.peer, request, { timeoutMs });
    } catch (error) {
      const deviceId = registration.endpoint;
      if (error instanceof CoapTimeoutError) {
        throw new TwinError('DeviceTimeout', `${deviceId} did not answer within ${timeoutMs} ms (${error.message})`, {
          timeoutMs,
        });
      }
      if (error instanceof CoapResetError) {
        throw new TwinError('DeviceRejected', `${deviceId} answered with a CoAP reset`, { coapCode: 'RST' });
      }
      if (error instanceof CoapCancelledError) {
        throw this.closing
          ? new TwinError('ConnectorUnavailable', `the connector is shutting down; retry (${deviceId})`)
          : new TwinError('DeviceNotConnected', `${deviceId} is no longer registered (${error.message})`);
      }
      throw error;
    }
  }

  private expectSuccess(deviceId: string, entry: CatalogEntry, response: CoapMessage): void {
    if (isSuccessCode(response.code)) return;
    const coapCode = formatCode(response.code);
    const diagnostic = response.payload.length > 0 ? `: ${response.payload.toString('utf8').slice(0, 200)}` : '';
    throw new TwinError(
      'DeviceRejected',
      `${deviceId} refused ${entry.name} (${entry.path}) with ${coapCode}${diagnostic}`,
      {
        coapCode,
      },
    );
  }

  // ---- plumbing ----

  private send(
    registration: Registration,
    request: OutgoingRequest,
    onNotification?: NotificationListener,
  ): Promise<CoapMessage> {
    return registration.coap.request(registration.peer, request, {
      timeoutMs: this.options.deviceTimeoutMs,
      onNotification,
    });
  }

  private pathOptions(registration: Registration, entry: CatalogEntry) {
    const segments = [
      ...(registration.rootPath === '' ? [] : registration.rootPath.split('/')),
      String(entry.objectId),
      String(entry.instanceId),
      String(entry.resourceId),
    ];
    return segments.map((segment) => stringOption(OptionNumber.URI_PATH, segment));
  }

  /**
   * Runs a twin mutation after the device's previous one (per-device order), retrying transient store errors.
   * Resolves to whether the twin was written (false: the mutation changed nothing, the twin is gone, or the write
   * failed; also when a write landed but its reply was lost and the retry found nothing left to change, so the event
   * that depends on it is lost: events are best effort). Never rejects: failures are logged.
   */
  private twinTask(deviceId: string, mutate: (twin: TwinDocument) => TwinDocument | undefined): Promise<boolean> {
    const previous = this.twinTasks.get(deviceId) ?? Promise.resolve(false);
    const task = previous.then(async () => {
      for (let attempt = 1; ; attempt++) {
        // `mutate` may run more than once (a lost ETag race): its last run is what was written.
        let changed = false;
        const tracked = (twin: TwinDocument) => {
          const next = mutate(twin);
          changed = next !== undefined;
          return next;
        };
        try {
          const stored = await this.options.store.update(deviceId, tracked);
          return stored !== undefined && changed;
        } catch (error) {
          if (attempt >= TWIN_WRITE_ATTEMPTS) {
            this.options.log.error('twin connection write failed', {
              deviceId,
              error: error instanceof Error ? error.message : String(error),
            });
            return false;
          }
          await new Promise((resolve) => setTimeout(resolve, TWIN_WRITE_RETRY_MS * attempt));
        }
      }
    });
    this.twinTasks.set(deviceId, task);
    void task.then(() => {
      if (this.twinTasks.get(deviceId) === task) this.twinTasks.delete(deviceId);
    });
    return task;
  }

  /**
   * Stops: new registrations get 5.03, every held registration ends (its twin disconnected), and this resolves
   * when those twin writes are done.
   */
  /** From now on, registrations get 5.03 and device operations fail as ConnectorUnavailable / DeviceNotConnected. */
  stopAccepting(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const registration of [...this.registry.all()]) this.end(registration, 'connector shutting down', true);
    while (this.twinTasks.size > 0) await Promise.all([...this.twinTasks.values()]);
  }
}

/** The listener of one observation: three references, no closure (there are 20 per device). */
class ResourceObserver implements NotificationListener {
  constructor(
    private readonly server: Lwm2mServer,
    private readonly registration: Registration,
    private readonly entry: CatalogEntry,
  ) {}

  onNotification(message: CoapMessage, final: boolean): void {
    this.server.handleNotification(this.registration, this.entry, message, final);
  }
}
