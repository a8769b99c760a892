/**
 * One simulated LwM2M 1.1 client: its own UDP endpoint, objects /1, /3 and /5, the registration interface
 * (Register, Update before the lifetime runs out, De-register, re-Register after 4.04), and the device
 * management and information reporting interfaces (Read, Write, Execute, Write-Attributes, Discover,
 * Observe / Cancel with pmin/pmax, Send). Optionally in queue mode: it sleeps after its awake window and wakes
 * with an Update.
 */
import { EventEmitter } from 'events';
import { AttributeStore } from './attributeStore';
import { block2Response, firstBlockOf, requestInBlocks } from './blockwise';
import { CoapEndpoint, CoapEndpointCounters, IncomingRequest, OutgoingResponse, RemoteAddress } from './coapEndpoint';
import {
  decodeWrite,
  defaultFormat,
  encodeLinkFormat,
  encodeReadings,
  encodeSendPack,
  Link,
  ResourceReading,
} from './contentFormats';
import {
  findResource,
  formatPath,
  hasObjectOrInstance,
  Lwm2mPath,
  parsePath,
  resourcesUnder,
  ResourceValue,
  SIMULATED_OBJECT_IDS,
  validateResourceValue,
} from './deviceResources';
import { DeviceState, Paths } from './deviceState';
import { PskCredentials } from './deviceTransport';
import { ObservationInfo, Observations, SentNotification } from './observations';
import {
  ContentFormat,
  LWM2M_VERSION,
  MethodCode,
  OBSERVE_DEREGISTER,
  OBSERVE_REGISTER,
  QUEUE_MODE_PARAMETER,
  REGISTRATION_PATH,
  REGISTRATION_RETRY_INITIAL_MS,
  REGISTRATION_RETRY_MAX_MS,
  ResponseCode,
  SEND_PATH,
  UPDATE_AT_LIFETIME_FRACTION,
} from './protocol';
import { Scheduler, ScheduledTask } from './scheduler';
import { ServerInstance } from './serverInstance';

/** Everything a device is told by its fleet. Times in ms unless named in seconds. */
export interface SimulatedDeviceSettings {
  readonly endpoint: string;
  /** Seeds the device's simulated values. */
  readonly seed: number;
  readonly server: RemoteAddress;
  /** Speak coaps:// (DTLS 1.2 PSK) with this identity and key; absent: plain CoAP. */
  readonly security?: PskCredentials;
  /** Bound on one DTLS handshake, ms (default DTLS_HANDSHAKE_TIMEOUT_MS). */
  readonly dtlsHandshakeTimeoutMs?: number;
  readonly socketType: 'udp4' | 'udp6';
  readonly bindAddress: string;
  readonly lifetimeSeconds: number;
  /** Initial /1/0/2 and /1/0/3: pmin/pmax of observations without written attributes. */
  readonly defaultMinPeriodSeconds: number;
  readonly defaultMaxPeriodSeconds: number;
  /** Fleet-wide pmin/pmax that win over Write-Attributes (demos). */
  readonly pminOverrideSeconds?: number;
  readonly pmaxOverrideSeconds?: number;
  readonly confirmableEvery: number;
  readonly rebootDelayMs: number;
  readonly firmwareStepMs: number;
  readonly deregisterTimeoutMs: number;
  /** Announces `ct=112` on its root link and answers reads and observes without Accept in SenML CBOR. */
  readonly prefersSenmlCbor?: boolean;
  /**
   * A small buffer (16-1024, a power of two): responses and notifications larger than this go as Block2 blocks and
   * a larger Register payload as Block1 blocks (RFC 7959). Absent: everything in one message.
   */
  readonly blockSize?: number;
  /** The Server object's instance as the server sees it: `</1/1>` in the Register, served at `/1/1` (default 0). */
  readonly serverInstanceId?: number;
  /**
   * Reports by LwM2M 1.1 Send as well: every this many ms, while registered and awake, the values that changed since
   * the last Send go as one `POST /dp` (SenML JSON, or SenML CBOR with `prefersSenmlCbor`) with the send time as base
   * time. Notifications go on beside it (`pauseNotifications` for a device that only Sends). Absent: no Send.
   */
  readonly sendIntervalMs?: number;
  /**
   * Queue mode: registers with the `Q` parameter; `awakeWindowMs` after its Register/Update or its last answer to the
   * server it sleeps (receives nothing, sends nothing, holds notifications and Sends back), and `sleepIntervalMs` later
   * it wakes with an Update, after which it sends what it held back.
   */
  readonly queueMode?: { readonly awakeWindowMs: number; readonly sleepIntervalMs: number };
  readonly scheduler: Scheduler;
  readonly log: (line: string) => void;
}

/** Running totals of one device, since it started (across reboots). */
export interface DeviceCounters {
  /** Successful Registers (the first one, after reboots, after a 4.04 Update...). */
  registrations: number;
  /** Register attempts that failed (timeout, error code); each is retried with back-off. */
  registrationFailures: number;
  /** Successful registration Updates. */
  updates: number;
  deregistrations: number;
  reboots: number;
  /** Requests from the server answered (retransmitted duplicates not counted). */
  requestsServed: number;
  /** Notifications sent, first responses to observe requests not included. */
  notificationsSent: number;
  confirmableNotificationsSent: number;
  datagramsSent: number;
  datagramsReceived: number;
  /** Datagrams dropped in either direction while unreachable. */
  datagramsDropped: number;
  malformedDropped: number;
  retransmissions: number;
  /** Confirmable notifications the server acknowledged. */
  notificationsAcknowledged: number;
  /** Sends (`POST /dp`) the server answered 2.04. */
  sends: number;
  /** Times a queue-mode device fell asleep. */
  sleeps: number;
}

export interface SimulatedDeviceEvents {
  /** Registered; `location` is the registration's path at the server (`/rd/5a3f`). */
  registered: [{ location: string; port: number }];
  updated: [{ location: string }];
  deregistered: [];
  registrationFailed: [{ reason: string; retryInMs: number }];
  notification: [SentNotification];
  /** A request from the server was answered with `code`. */
  request: [{ method: string; path: string; code: string }];
  observationCancelled: [{ path: string; reason: 'cancelled' | 'reset' | 'timeout' | 'reregistered' }];
  /** Rebooted onto a new UDP port; it registers again `rebootDelayMs` later. */
  rebooted: [{ port: number }];
  /** A Send the server answered 2.04, with the paths it carried (as the server sees them). */
  sent: [{ paths: string[] }];
  /** Queue mode: asleep (from now on it drops what it receives and sends nothing). */
  asleep: [];
  /** Queue mode: awake again; its Update follows. */
  woke: [];
}

type RegistrationState = 'unregistered' | 'registering' | 'registered' | 'stopped';

interface Registration {
  location: readonly string[];
  /** Lifetime and binding last told to the server; an Update carries them only when they changed. */
  lifetimeSeconds: number;
  binding: string;
}

const METHOD_NAMES: Readonly<Record<string, string>> = {
  [MethodCode.GET]: 'GET',
  [MethodCode.POST]: 'POST',
  [MethodCode.PUT]: 'PUT',
  [MethodCode.DELETE]: 'DELETE',
};

export class SimulatedDevice extends EventEmitter<SimulatedDeviceEvents> {
  readonly endpoint: string;
  private coap: CoapEndpoint;
  private readonly state: DeviceState;
  private readonly attributes = new AttributeStore();
  private readonly observations: Observations;
  private registrationState: RegistrationState = 'unregistered';
  private registration: Registration | undefined;
  private registrationTask: ScheduledTask | undefined;
  private registrationFailuresInARow = 0;
  private updateInFlight = false;
  private updateRequested = false;
  private registeredWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly ownCounters = {
    registrations: 0,
    registrationFailures: 0,
    updates: 0,
    deregistrations: 0,
    reboots: 0,
    requestsServed: 0,
    notificationsSent: 0,
    confirmableNotificationsSent: 0,
    sends: 0,
    sleeps: 0,
  };
  /** Endpoint counters of sockets closed by reboots. */
  private readonly closedEndpointCounters: CoapEndpointCounters = {
    datagramsSent: 0,
    datagramsReceived: 0,
    datagramsDropped: 0,
    malformedDropped: 0,
    retransmissions: 0,
    notificationsAcknowledged: 0,
  };
  private unreachable = false;
  private rebooting: Promise<void> | undefined;
  private readonly serverInstance: ServerInstance;
  /** Notifications held back by `pauseNotifications` (a sleeping device holds them back as well). */
  private notificationsPausedByCaller = false;
  private asleep = false;
  private sleepTask: ScheduledTask | undefined;
  private wakeTask: ScheduledTask | undefined;
  private sendTask: ScheduledTask | undefined;
  private sendInFlight = false;
  /** Paths inside (`/1/0/1`) changed since the last Send. */
  private readonly changedSinceSend = new Set<string>();

  private constructor(
    private readonly settings: SimulatedDeviceSettings,
    coap: CoapEndpoint,
  ) {
    super();
    this.endpoint = settings.endpoint;
    this.coap = coap;
    this.serverInstance = new ServerInstance(settings.serverInstanceId ?? 0);
    const scheduler = settings.scheduler;
    this.observations = new Observations({
      scheduler,
      attributesFor: (path) => this.effectiveAttributes(path),
      encode: (path, format) => this.encodeShown(path, this.readingsAt(path), format),
      transmit: (remote, token, message, confirmable) =>
        this.coap.notify(
          remote,
          token,
          settings.blockSize ? firstBlockOf(message, settings.blockSize) : message,
          confirmable,
        ),
      confirmableEvery: settings.confirmableEvery,
      onSent: (notification) => {
        this.ownCounters.notificationsSent++;
        if (notification.confirmable) this.ownCounters.confirmableNotificationsSent++;
        if (this.listenerCount('notification') > 0) this.emit('notification', notification);
      },
      onRemoved: (token) => this.coap.forgetNotifications(token),
    });
    this.state = new DeviceState({
      endpoint: settings.endpoint,
      seed: settings.seed,
      lifetimeSeconds: settings.lifetimeSeconds,
      defaultMinPeriodSeconds: settings.defaultMinPeriodSeconds,
      defaultMaxPeriodSeconds: settings.defaultMaxPeriodSeconds,
      firmwareStepMs: settings.firmwareStepMs,
      scheduler,
      onChange: (path) => this.valueChanged(path),
    });
  }

  /** Opens the device's socket; it registers when `startRegistration` is called. */
  static async create(settings: SimulatedDeviceSettings): Promise<SimulatedDevice> {
    let device: SimulatedDevice | undefined;
    const coap = await CoapEndpoint.open(SimulatedDevice.endpointOptions(settings, () => device));
    try {
      device = new SimulatedDevice(settings, coap);
    } catch (error) {
      await coap.close();
      throw error;
    }
    return device;
  }

  private static endpointOptions(settings: SimulatedDeviceSettings, device: () => SimulatedDevice | undefined) {
    return {
      type: settings.socketType,
      bindAddress: settings.bindAddress,
      server: settings.server,
      security: settings.security,
      dtlsHandshakeTimeoutMs: settings.dtlsHandshakeTimeoutMs,
      onSessionEnd: (reason: string) => device()?.sessionEnded(reason),
      scheduler: settings.scheduler,
      handleRequest: (request: IncomingRequest): OutgoingResponse =>
        device()?.serve(request) ?? { code: ResponseCode.INTERNAL_SERVER_ERROR },
      onNotificationRejected: (token: Buffer, reason: 'reset' | 'timeout') =>
        device()?.notificationRejected(token, reason),
      log: (line: string) => settings.log(`${settings.endpoint}: ${line}`),
    };
  }

  /** The device's current UDP port (a reboot changes it). */
  get port(): number {
    return this.coap.port;
  }

  get isRegistered(): boolean {
    return this.registrationState === 'registered';
  }

  /** Queue mode: asleep now (it receives nothing and sends nothing until it wakes with an Update). */
  get isAsleep(): boolean {
    return this.asleep;
  }

  /** The registration's path at the server (`/rd/5a3f`), while registered. */
  get registrationLocation(): string | undefined {
    return this.registration && '/' + this.registration.location.join('/');
  }

  /** Resolves when the device is registered (at once if it is); rejects if it stops first. */
  registered(): Promise<void> {
    if (this.isRegistered) return Promise.resolve();
    if (this.registrationState === 'stopped') {
      return Promise.reject(new Error(`${this.endpoint} is stopped`));
    }
    return new Promise((resolve, reject) => this.registeredWaiters.push({ resolve, reject }));
  }

  /** Starts registering (the fleet spreads these calls over time). */
  startRegistration(): void {
    if (this.registrationState === 'unregistered' && !this.rebooting && !this.registrationTask) void this.register();
  }

  /** A resource's current value. Throws for a path the device does not have or an executable one. */
  getValue(path: string): ResourceValue {
    const value = this.state.read(this.resourceOrThrow(path).path);
    if (value === undefined) throw new Error(`${this.endpoint}: ${path} has no value`);
    return value;
  }

  /**
   * Changes a value as the physical world would (read-only resources too): observers are notified, pmin
   * permitting. Throws, naming the problem, for an unknown path or a value of the wrong type or range.
   */
  setValue(path: string, value: ResourceValue): void {
    const definition = this.resourceOrThrow(path);
    const check = validateResourceValue(definition, value);
    if (!check.ok) throw new RangeError(`${this.endpoint}: ${check.reason}`);
    this.observations.batch(() => this.state.write(definition.path, check.value));
  }

  /** One step of simulated life (battery, memory, clock); the fleet calls it every change interval. */
  step(): void {
    if (this.registrationState === 'stopped') return;
    this.observations.batch(() => this.state.step());
  }

  /** Stops sending notifications (requests are still answered); changes wait for `resumeNotifications`. */
  pauseNotifications(): void {
    this.notificationsPausedByCaller = true;
    this.observations.pause();
  }

  /** Sends what changed meanwhile (a sleeping device keeps holding it back until it wakes). */
  resumeNotifications(): void {
    this.notificationsPausedByCaller = false;
    if (!this.asleep) this.observations.resume();
  }

  /** While true, every datagram to or from the device is dropped; its timers keep running. */
  setUnreachable(unreachable: boolean): void {
    this.unreachable = unreachable;
    this.coap.unreachable = unreachable || this.asleep;
  }

  /** The observations the server holds on this device. */
  observationList(): ObservationInfo[] {
    return this.observations.list();
  }

  /** Running totals (a snapshot). */
  get counters(): DeviceCounters {
    const endpoint = this.coap.counters;
    const closed = this.closedEndpointCounters;
    return {
      ...this.ownCounters,
      datagramsSent: endpoint.datagramsSent + closed.datagramsSent,
      datagramsReceived: endpoint.datagramsReceived + closed.datagramsReceived,
      datagramsDropped: endpoint.datagramsDropped + closed.datagramsDropped,
      malformedDropped: endpoint.malformedDropped + closed.malformedDropped,
      retransmissions: endpoint.retransmissions + closed.retransmissions,
      notificationsAcknowledged: endpoint.notificationsAcknowledged + closed.notificationsAcknowledged,
    };
  }

  /**
   * Stops the device: with `deregister` (default true) and while registered it sends De-register and waits
   * for the answer (at most `deregisterTimeoutMs`), then closes its socket. Idempotent.
   */
  async stop(options: { deregister?: boolean } = {}): Promise<void> {
    if (this.registrationState === 'stopped') return;
    const registration = this.registrationState === 'registered' ? this.registration : undefined;
    this.registrationState = 'stopped';
    this.settings.scheduler.cancel(this.registrationTask);
    this.registrationTask = undefined;
    this.stopQueueModeAndSend();
    this.observations.clear();
    this.state.stop();
    await this.rebooting;
    if (registration && options.deregister !== false) {
      try {
        await this.coap.connect();
        await this.coap.request(this.settings.server, {
          code: MethodCode.DELETE,
          uriPath: registration.location,
          timeoutMs: this.settings.deregisterTimeoutMs,
        });
        this.ownCounters.deregistrations++;
        this.log(`de-registered ${this.registrationLocation}`);
        this.emit('deregistered');
      } catch (error) {
        this.log(`de-register failed: ${message(error)}`);
      }
    }
    this.registration = undefined;
    for (const waiter of this.registeredWaiters.splice(0)) {
      waiter.reject(new Error(`${this.endpoint} stopped before registering`));
    }
    await this.coap.close();
  }

  // ---- registration interface -------------------------------------------------------------------------

  private async register(): Promise<void> {
    this.settings.scheduler.cancel(this.registrationTask);
    this.registrationTask = undefined;
    if (this.registrationState === 'stopped') return;
    this.registrationState = 'registering';
    this.registration = undefined;
    if (this.asleep) this.wakeUp();
    this.cancelAllObservations('reregistered');
    const coap = this.coap;
    const lifetimeSeconds = this.state.read(Paths.registrationLifetime) as number;
    const binding = this.state.read(Paths.binding) as string;
    try {
      // A Register starts a new DTLS session (a refused one fails here and is retried with back-off).
      await coap.connect({ fresh: true });
      if (coap !== this.coap || this.registrationState !== 'registering') return;
      const response = await requestInBlocks(
        coap,
        this.settings.server,
        {
          code: MethodCode.POST,
          uriPath: [REGISTRATION_PATH],
          uriQuery: [
            `ep=${this.endpoint}`,
            `lt=${lifetimeSeconds}`,
            `lwm2m=${LWM2M_VERSION}`,
            `b=${binding}`,
            ...(this.settings.queueMode ? [QUEUE_MODE_PARAMETER] : []),
          ],
          contentFormat: ContentFormat.LINK_FORMAT,
          payload: registrationLinks(this.settings.prefersSenmlCbor, this.serverInstance.instanceId),
        },
        this.settings.blockSize,
      );
      if (coap !== this.coap || this.registrationState !== 'registering') return;
      if (response.code !== ResponseCode.CREATED || response.locationPath.length === 0) {
        this.registrationFailed(`Register answered ${response.code}${diagnostic(response.payload)}`);
        return;
      }
      this.registration = { location: response.locationPath, lifetimeSeconds, binding };
      this.registrationState = 'registered';
      this.registrationFailuresInARow = 0;
      this.ownCounters.registrations++;
      this.log(`registered as ${this.registrationLocation} from port ${coap.port} (lifetime ${lifetimeSeconds} s)`);
      this.scheduleUpdate(lifetimeSeconds);
      this.messageToServerAnswered();
      this.scheduleSend();
      for (const waiter of this.registeredWaiters.splice(0)) waiter.resolve();
      this.emit('registered', { location: this.registrationLocation as string, port: coap.port });
    } catch (error) {
      if (coap !== this.coap || this.registrationState !== 'registering') return;
      this.registrationFailed(`Register failed: ${message(error)}`);
    }
  }

  private registrationFailed(reason: string): void {
    this.registrationState = 'unregistered';
    this.ownCounters.registrationFailures++;
    const backoff = Math.min(
      REGISTRATION_RETRY_MAX_MS,
      REGISTRATION_RETRY_INITIAL_MS * 2 ** Math.min(this.registrationFailuresInARow, 16),
    );
    this.registrationFailuresInARow++;
    // ±20 % jitter, so a fleet that lost its server does not come back in lock-step.
    const retryInMs = Math.round(backoff * (0.8 + Math.random() * 0.4));
    this.log(`${reason}; registering again in ${retryInMs} ms`);
    this.registrationTask = this.settings.scheduler.after(retryInMs, () => void this.register());
    this.emit('registrationFailed', { reason, retryInMs });
  }

  private scheduleUpdate(lifetimeSeconds: number): void {
    this.settings.scheduler.cancel(this.registrationTask);
    this.registrationTask = this.settings.scheduler.after(
      lifetimeSeconds * 1000 * UPDATE_AT_LIFETIME_FRACTION,
      () => void this.update(),
    );
  }

  /** Sends a registration Update now (or right after the one in flight). */
  private requestUpdate(): void {
    if (this.registrationState !== 'registered') return;
    if (this.updateInFlight) this.updateRequested = true;
    else void this.update();
  }

  private async update(): Promise<void> {
    const registration = this.registration;
    if (this.registrationState !== 'registered' || !registration) return;
    this.settings.scheduler.cancel(this.registrationTask);
    this.registrationTask = undefined;
    if (this.asleep) this.wakeUp();
    this.updateInFlight = true;
    const coap = this.coap;
    const lifetimeSeconds = this.state.read(Paths.registrationLifetime) as number;
    const binding = this.state.read(Paths.binding) as string;
    const uriQuery = [
      ...(lifetimeSeconds !== registration.lifetimeSeconds ? [`lt=${lifetimeSeconds}`] : []),
      ...(binding !== registration.binding ? [`b=${binding}`] : []),
    ];
    let outcome: 'updated' | 'register' | 'stale';
    try {
      await coap.connect();
      const response = await coap.request(this.settings.server, {
        code: MethodCode.POST,
        uriPath: registration.location,
        uriQuery,
      });
      if (coap !== this.coap || this.registration !== registration) outcome = 'stale';
      else if (response.code === ResponseCode.CHANGED) outcome = 'updated';
      else {
        this.log(`Update answered ${response.code}${diagnostic(response.payload)}; registering again`);
        outcome = 'register';
      }
    } catch (error) {
      outcome = coap !== this.coap || this.registration !== registration ? 'stale' : 'register';
      if (outcome === 'register') this.log(`Update failed: ${message(error)}; registering again`);
    }
    this.updateInFlight = false;
    if (outcome === 'stale' || this.registrationState !== 'registered') return;
    if (outcome === 'register') {
      this.registrationState = 'unregistered';
      void this.register();
      return;
    }
    registration.lifetimeSeconds = lifetimeSeconds;
    registration.binding = binding;
    this.ownCounters.updates++;
    this.scheduleUpdate(lifetimeSeconds);
    this.messageToServerAnswered();
    this.emit('updated', { location: this.registrationLocation as string });
    if (this.updateRequested) {
      this.updateRequested = false;
      void this.update();
    }
  }

  /**
   * The server ended the DTLS session (its key was rotated or the device deprovisioned): the registration went with
   * it, so the device registers again over a new session, with back-off while that is refused.
   */
  private sessionEnded(reason: string): void {
    if (this.registrationState !== 'registered') return;
    this.log(`DTLS session ended by the server (${reason}); registering again`);
    this.registrationState = 'unregistered';
    void this.register();
  }

  /** Reboot: the device vanishes without de-registering and comes back from a new port (NAT rebinding). */
  private reboot(): void {
    if (this.registrationState === 'stopped' || this.rebooting) return;
    this.ownCounters.reboots++;
    this.settings.scheduler.cancel(this.registrationTask);
    this.registrationTask = undefined;
    this.registrationState = 'unregistered';
    this.registration = undefined;
    this.stopQueueModeAndSend();
    this.cancelAllObservations('reregistered');
    this.attributes.clear();
    this.state.stop();
    const old = this.coap;
    this.log(`rebooting: leaving port ${old.port} without de-registering`);
    this.rebooting = (async () => {
      try {
        // The new socket is bound before the old one closes, so the port always changes.
        const fresh = await CoapEndpoint.open(SimulatedDevice.endpointOptions(this.settings, () => this));
        fresh.unreachable = this.unreachable;
        this.coap = fresh;
        const counters = old.counters;
        for (const key of Object.keys(counters) as (keyof CoapEndpointCounters)[]) {
          this.closedEndpointCounters[key] += counters[key];
        }
        await old.close();
        if (this.registrationState === 'stopped') return;
        this.log(`rebooted onto port ${fresh.port}; registering in ${this.settings.rebootDelayMs} ms`);
        this.registrationTask = this.settings.scheduler.after(this.settings.rebootDelayMs, () => void this.register());
        this.emit('rebooted', { port: fresh.port });
      } catch (error) {
        this.log(`reboot failed: ${message(error)}`);
      } finally {
        this.rebooting = undefined;
      }
    })();
  }

  // ---- device management and information reporting -----------------------------------------------------

  private serve(request: IncomingRequest): OutgoingResponse {
    this.ownCounters.requestsServed++;
    // Its answer is a message to the server: a queue-mode device stays awake for another window.
    if (this.settings.queueMode && this.isRegistered && !this.asleep) this.scheduleSleep();
    const routed = this.route(request);
    const response = this.settings.blockSize ? block2Response(request, routed, this.settings.blockSize) : routed;
    if (this.listenerCount('request') > 0) {
      const method = METHOD_NAMES[request.code] ?? request.code;
      this.emit('request', { method, path: '/' + request.uriPath.join('/'), code: response.code });
    }
    return response;
  }

  private route(request: IncomingRequest): OutgoingResponse {
    const parsed = parsePath(request.uriPath);
    const path = parsed && this.serverInstance.inside(parsed);
    if (!path) return error(ResponseCode.NOT_FOUND, `no such path /${request.uriPath.join('/')}`);
    switch (request.code) {
      case MethodCode.GET:
        return request.accept === ContentFormat.LINK_FORMAT ? this.discover(path) : this.read(request, path);
      case MethodCode.PUT:
        return request.uriQuery.length > 0 && request.payload.length === 0
          ? this.writeAttributes(request, path)
          : this.write(request, path);
      case MethodCode.POST: {
        const definition = path.resourceId !== undefined ? findResource(formatPath(path)) : undefined;
        return definition?.executable ? this.execute(path) : this.write(request, path);
      }
      default:
        return error(ResponseCode.METHOD_NOT_ALLOWED, `${METHOD_NAMES[request.code] ?? request.code} is not supported`);
    }
  }

  private read(request: IncomingRequest, path: Lwm2mPath): OutgoingResponse {
    const found = this.findReadable(path);
    if ('code' in found) return found;
    const format = request.accept ?? defaultFormat(path, found, this.settings.prefersSenmlCbor);
    const payload = this.encodeShown(path, found, format);
    if (payload === undefined) {
      return error(ResponseCode.NOT_ACCEPTABLE, `${formatPath(path)} cannot be sent as content format ${format}`);
    }
    if (request.observe === OBSERVE_REGISTER) {
      const observe = this.observations.add(request.token, request.remote, path, format);
      return { code: ResponseCode.CONTENT, observe, contentFormat: format, payload };
    }
    if (request.observe === OBSERVE_DEREGISTER) this.cancelObservation(request.token, 'cancelled');
    return { code: ResponseCode.CONTENT, contentFormat: format, payload };
  }

  private findReadable(path: Lwm2mPath): ResourceReading[] | OutgoingResponse {
    const pathKey = formatPath(path);
    if (path.resourceId !== undefined) {
      const definition = path.resourceInstanceId === undefined ? findResource(pathKey) : undefined;
      if (!definition) return error(ResponseCode.NOT_FOUND, `no resource ${pathKey}`);
      if (!definition.readable) return error(ResponseCode.METHOD_NOT_ALLOWED, `${pathKey} is not readable`);
      return this.readingsAt(path);
    }
    if (!hasObjectOrInstance(path)) return error(ResponseCode.NOT_FOUND, `no object instance ${pathKey}`);
    return this.readingsAt(path);
  }

  private readingsAt(path: Lwm2mPath): ResourceReading[] {
    const readings: ResourceReading[] = [];
    for (const definition of resourcesUnder(path)) {
      if (!definition.readable) continue;
      const value = this.state.read(definition.path);
      if (value !== undefined) readings.push({ definition, value });
    }
    return readings;
  }

  private discover(path: Lwm2mPath): OutgoingResponse {
    const pathKey = formatPath(path);
    const resources = resourcesUnder(path);
    if (resources.length === 0) return error(ResponseCode.NOT_FOUND, `no such path ${pathKey}`);
    const link = (linkPath: Lwm2mPath): Link => ({
      path: formatPath(this.serverInstance.shown(linkPath)),
      attributes: { ...this.attributes.writtenAt(linkPath) },
    });
    const links: Link[] = [];
    if (path.instanceId === undefined) links.push(link({ objectId: path.objectId }));
    if (path.resourceId === undefined) {
      for (const instanceId of new Set(resources.map((r) => r.instanceId))) {
        links.push(link({ objectId: path.objectId, instanceId }));
      }
    }
    for (const r of resources) {
      links.push(link({ objectId: r.objectId, instanceId: r.instanceId, resourceId: r.resourceId }));
    }
    return { code: ResponseCode.CONTENT, contentFormat: ContentFormat.LINK_FORMAT, payload: encodeLinkFormat(links) };
  }

  private write(request: IncomingRequest, path: Lwm2mPath): OutgoingResponse {
    const pathKey = formatPath(path);
    if (path.resourceId === undefined) {
      return hasObjectOrInstance(path)
        ? error(ResponseCode.METHOD_NOT_ALLOWED, `writes to ${pathKey} are not supported: write one resource`)
        : error(ResponseCode.NOT_FOUND, `no object instance ${pathKey}`);
    }
    const definition = path.resourceInstanceId === undefined ? findResource(pathKey) : undefined;
    if (!definition) return error(ResponseCode.NOT_FOUND, `no resource ${pathKey}`);
    if (!definition.writable) return error(ResponseCode.METHOD_NOT_ALLOWED, `${pathKey} is not writable`);
    const format = request.contentFormat ?? ContentFormat.TEXT;
    if (format !== ContentFormat.TEXT && format !== ContentFormat.OPAQUE) {
      return error(ResponseCode.UNSUPPORTED_CONTENT_FORMAT, `content format ${format}: write text/plain or opaque`);
    }
    const decoded = decodeWrite(definition, request.payload, format);
    if (!decoded.ok) return error(ResponseCode.BAD_REQUEST, decoded.reason);
    const check = validateResourceValue(definition, decoded.value);
    if (!check.ok) return error(ResponseCode.BAD_REQUEST, check.reason);
    this.observations.batch(() => this.state.write(definition.path, check.value));
    return { code: ResponseCode.CHANGED };
  }

  private execute(path: Lwm2mPath): OutgoingResponse {
    switch (formatPath(path)) {
      case '/3/0/4':
        return { code: ResponseCode.CHANGED, afterSend: () => this.reboot() };
      case '/3/0/5':
        return {
          code: ResponseCode.CHANGED,
          afterSend: () => this.observations.batch(() => this.state.factoryReset()),
        };
      case '/1/0/8':
        return { code: ResponseCode.CHANGED, afterSend: () => this.requestUpdate() };
      case '/5/0/2': {
        const refusal = this.state.executeFirmwareUpdate();
        return refusal ? error(ResponseCode.METHOD_NOT_ALLOWED, refusal) : { code: ResponseCode.CHANGED };
      }
      default:
        return error(ResponseCode.METHOD_NOT_ALLOWED, `${formatPath(path)} cannot be executed`);
    }
  }

  private writeAttributes(request: IncomingRequest, path: Lwm2mPath): OutgoingResponse {
    const pathKey = formatPath(path);
    const exists =
      path.resourceId !== undefined
        ? path.resourceInstanceId === undefined && findResource(pathKey) !== undefined
        : hasObjectOrInstance(path);
    if (!exists) return error(ResponseCode.NOT_FOUND, `no such path ${pathKey}`);
    const result = this.attributes.apply(path, request.uriQuery);
    if (!result.ok) return error(ResponseCode.BAD_REQUEST, result.reason);
    this.observations.attributesChanged();
    return { code: ResponseCode.CHANGED };
  }

  // ---- reactions ----------------------------------------------------------------------------------------

  private effectiveAttributes(path: Lwm2mPath) {
    return this.attributes.effective(
      path,
      {
        pmin: this.state.read(Paths.defaultMinPeriod) as number,
        pmax: this.state.read(Paths.defaultMaxPeriod) as number,
      },
      { pmin: this.settings.pminOverrideSeconds, pmax: this.settings.pmaxOverrideSeconds },
    );
  }

  private valueChanged(path: string): void {
    this.observations.changed(path);
    if (this.settings.sendIntervalMs !== undefined) this.changedSinceSend.add(path);
    if (path === Paths.registrationLifetime || path === Paths.binding) this.requestUpdate();
    else if (path === Paths.defaultMinPeriod || path === Paths.defaultMaxPeriod) this.observations.attributesChanged();
  }

  private notificationRejected(token: Buffer, reason: 'reset' | 'timeout'): void {
    this.cancelObservation(token, reason);
  }

  private cancelObservation(token: Buffer, reason: 'cancelled' | 'reset' | 'timeout'): void {
    const tokenKey = token.toString('hex');
    const path = this.observations.pathOf(tokenKey);
    if (path === undefined || !this.observations.cancel(tokenKey)) return;
    this.emit('observationCancelled', { path, reason });
  }

  private cancelAllObservations(reason: 'reregistered'): void {
    for (const { path } of this.observations.list()) this.emit('observationCancelled', { path, reason });
    this.observations.clear();
  }

  /** `readings` at `path` (both inside) in `format`, with the paths the server sees. */
  private encodeShown(path: Lwm2mPath, readings: readonly ResourceReading[], format: number): Buffer | undefined {
    const shown = readings.map((reading) => this.serverInstance.shownReading(reading));
    return encodeReadings(this.serverInstance.shown(path), shown, format);
  }

  // ---- Send (LwM2M 1.1 information reporting) -------------------------------------------------------------

  private scheduleSend(): void {
    const intervalMs = this.settings.sendIntervalMs;
    if (intervalMs === undefined || this.sendTask) return;
    const tick = () => {
      this.sendTask = this.settings.scheduler.after(intervalMs, tick);
      if (this.isRegistered && !this.asleep && !this.sendInFlight && this.changedSinceSend.size > 0) {
        void this.sendChanged();
      }
    };
    this.sendTask = this.settings.scheduler.after(intervalMs, tick);
  }

  /** One Send of the readable values changed since the last one; on failure they go in the next. */
  private async sendChanged(): Promise<void> {
    const paths = [...this.changedSinceSend];
    this.changedSinceSend.clear();
    const readings: ResourceReading[] = [];
    for (const path of paths.sort()) {
      const definition = findResource(path);
      const value = definition?.readable ? this.state.read(path) : undefined;
      if (definition && value !== undefined) {
        readings.push(this.serverInstance.shownReading({ definition, value }));
      }
    }
    if (readings.length === 0) return;
    const format = this.settings.prefersSenmlCbor ? ContentFormat.SENML_CBOR : ContentFormat.SENML_JSON;
    // Milliseconds kept: a Send dated to the whole second could be older than a notify of the same second.
    const baseTimeSeconds = this.settings.scheduler.now() / 1000;
    const coap = this.coap;
    this.sendInFlight = true;
    try {
      const response = await requestInBlocks(
        coap,
        this.settings.server,
        {
          code: MethodCode.POST,
          uriPath: [SEND_PATH],
          contentFormat: format,
          payload: encodeSendPack(readings, format, baseTimeSeconds),
        },
        this.settings.blockSize,
      );
      if (response.code !== ResponseCode.CHANGED) {
        throw new Error(`answered ${response.code}${diagnostic(response.payload)}`);
      }
      this.ownCounters.sends++;
      if (this.listenerCount('sent') > 0) this.emit('sent', { paths: readings.map((r) => r.definition.path) });
    } catch (error) {
      this.log(`Send failed: ${message(error)}`);
      if (coap === this.coap) for (const path of paths) this.changedSinceSend.add(path);
    } finally {
      this.sendInFlight = false;
    }
  }

  // ---- queue mode -----------------------------------------------------------------------------------------

  /** Register or Update answered: a queue-mode device sends what it held back, then stays awake for its window. */
  private messageToServerAnswered(): void {
    if (!this.settings.queueMode) return;
    if (!this.notificationsPausedByCaller) this.observations.resume();
    this.scheduleSleep();
  }

  private scheduleSleep(): void {
    const queueMode = this.settings.queueMode;
    if (!queueMode) return;
    this.settings.scheduler.cancel(this.sleepTask);
    this.sleepTask = this.settings.scheduler.after(queueMode.awakeWindowMs, () => this.fallAsleep());
  }

  private fallAsleep(): void {
    const queueMode = this.settings.queueMode;
    this.sleepTask = undefined;
    // An Update in flight ends in `messageToServerAnswered`, which plans the next sleep.
    if (!queueMode || this.asleep || !this.isRegistered || this.updateInFlight) return;
    this.asleep = true;
    this.ownCounters.sleeps++;
    this.coap.unreachable = true;
    this.observations.pause();
    this.log(`asleep for ${queueMode.sleepIntervalMs} ms`);
    this.emit('asleep');
    this.wakeTask = this.settings.scheduler.after(queueMode.sleepIntervalMs, () => {
      this.wakeTask = undefined;
      this.wakeUp();
      this.requestUpdate();
    });
  }

  /** Reachable again; held-back notifications wait for the Update's answer (`messageToServerAnswered`). */
  private wakeUp(): void {
    if (!this.asleep) return;
    this.asleep = false;
    this.settings.scheduler.cancel(this.wakeTask);
    this.wakeTask = undefined;
    this.coap.unreachable = this.unreachable;
    this.log('awake');
    this.emit('woke');
  }

  /** The device stops or reboots: no more sleeping, waking or Sends; it is reachable as the caller set it. */
  private stopQueueModeAndSend(): void {
    this.settings.scheduler.cancel(this.sleepTask);
    this.settings.scheduler.cancel(this.sendTask);
    this.sleepTask = undefined;
    this.sendTask = undefined;
    this.changedSinceSend.clear();
    if (this.asleep) {
      this.wakeUp();
      if (!this.notificationsPausedByCaller) this.observations.resume();
    }
  }

  /** The resource at `path` as the server sees it (`/1/1/3` on a device whose Server object is instance 1). */
  private resourceOrThrow(path: string) {
    const parsed = parsePath(path.split('/').slice(1));
    const inside = parsed && this.serverInstance.inside(parsed);
    const definition = inside && findResource(formatPath(inside));
    if (!definition || definition.executable) {
      throw new RangeError(`${this.endpoint}: no resource with a value at ${path}`);
    }
    return definition;
  }

  private log(line: string): void {
    this.settings.log(`${this.endpoint}: ${line}`);
  }
}

/**
 * The Register payload: the LwM2M root (with `ct=112` when the device prefers SenML CBOR), then each object
 * instance (CoRE link format, LwM2M 1.1 §6.2.1): the Server object at `serverInstanceId`, the others at 0.
 */
export function registrationLinks(prefersSenmlCbor = false, serverInstanceId = 0): Buffer {
  const serverInstance = new ServerInstance(serverInstanceId);
  return encodeLinkFormat([
    { path: '/', attributes: { rt: '"oma.lwm2m"', ...(prefersSenmlCbor && { ct: ContentFormat.SENML_CBOR }) } },
    ...SIMULATED_OBJECT_IDS.map((objectId) => ({
      path: formatPath(serverInstance.shown({ objectId, instanceId: 0 })),
    })),
  ]);
}

function error(code: string, reason: string): OutgoingResponse {
  return { code, payload: Buffer.from(reason, 'utf8') };
}

function diagnostic(payload: Buffer): string {
  return payload.length > 0 ? ` (${payload.toString('utf8').slice(0, 120)})` : '';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
