/**
 * Starts the connector in-process from injected parts: the twin store, the configuration, a logger and a clock.
 * `connector/main.ts` wires it to Cosmos and signals; tests and benchmarks start it on port 0.
 */
import { AddressInfo } from 'node:net';
import { ConnectorConfig, DEFAULT_AWAKE_WINDOW_SECONDS } from '../shared/config';
import { TwinStore } from '../shared/twinStore';
import { EventPublisher } from '../shared/twinEvents';
import { CoapEndpoint, EndpointStats } from './coap/coapEndpoint';
import { EventQueue, EventQueueStats } from './eventQueue';
import { createInternalApi } from './internalApi';
import { Logger } from './logger';
import { Lwm2mServer } from './lwm2mServer';
import { ReadingsSink, ReadingsWriterStats } from './readingsWriter';
import { ProvisioningGateStats } from './registration/provisioningGate';
import { MemoryRegistrationStore, RegistrationStore } from './registration/registrationStore';
import { CredentialCache } from './security/credentialCache';
import { CredentialFeed } from './security/cosmosCredentialSource';
import { DtlsTransport } from './dtls/dtlsTransport';
import { DtlsServerStats } from './dtls/dtlsServer';

/** The config fields the connector itself uses (the Cosmos and Service Bus sections are for the composition root). */
export type ConnectorSettings = Omit<ConnectorConfig, 'cosmos' | 'serviceBus' | 'serviceBusTransport'>;

/** CoAP over DTLS (RFC 7252 §12.7), when `config.coapsPort` is not given. */
const DEFAULT_COAPS_PORT = 5684;

/** How long a stop waits for twin events still being sent. */
const EVENTS_DRAIN_TIMEOUT_MS = 5_000;

export interface ConnectorOptions {
  /** Registrations and connection state go here (and readings, unless `readingsSink` is given). */
  store: TwinStore;
  /**
   * Where registrations are kept across restarts (main.ts: Cosmos `registrations`); default in memory, so they last
   * as long as the process. The connector loads this instance's registrations from it at start.
   */
  registrations?: RegistrationStore;
  /** Where readings are written (main.ts: a `ThreadedReadingsSink`); default `store`. Not closed by the connector. */
  readingsSink?: ReadingsSink;
  /**
   * `twin-events`: deviceConnected, deviceDisconnected and notify-driven propertyFresh (default: none). Not closed by
   * the connector; `close()` waits until the events emitted so far are sent, at most 5 s.
   */
  events?: EventPublisher;
  config: ConnectorSettings;
  /**
   * Device credentials as the Functions app writes them (main.ts: the Cosmos `credentials` container). With them the
   * connector serves CoAP over DTLS with pre-shared keys on `config.coapsPort` and admits each device only the way
   * it was provisioned; without them (tests, benchmarks), plain CoAP only, for every device whose twin exists.
   */
  credentials?: CredentialFeed;
  /**
   * A queue-mode device sent Register or Update and its twin says it is awake: run the jobs waiting for it (main.ts:
   * `resumeWaitingJobs` over the jobs store and the `device-jobs` queue). Default: none. Must not throw.
   */
  onDeviceAwake?: (deviceId: string) => void;
  log: Logger;
  /** Wall clock, ms since the epoch (default Date.now). */
  now?: () => number;
}

export interface ConnectorStats {
  instanceId: string;
  registrations: number;
  /** Registrations taken up from the store at start, and those found expired then. */
  restored: { registrations: number; expired: number; ms: number };
  /** Twin lookups, cached refusals and rate-limited refusals of Registers. */
  registrationGate: ProvisioningGateStats;
  observations: number;
  pendingReadings: number;
  readings: ReadingsWriterStats;
  /** Absent when the connector runs without an event publisher. */
  events?: EventQueueStats;
  /** Plain CoAP; absent when it is off. */
  coap?: EndpointStats;
  /** CoAP over DTLS and its sessions; absent without credentials. */
  coaps?: EndpointStats;
  dtls?: DtlsServerStats;
  /** Devices whose credentials the connector holds. */
  credentials?: number;
}

export interface RunningConnector {
  /** The bound UDP port of plain CoAP (0 when it is off). */
  coapPort: number;
  /** The bound UDP port of CoAP over DTLS (absent without credentials). */
  coapsPort?: number;
  /** The bound TCP port of the internal API, and a loopback URL for it. */
  apiPort: number;
  apiUrl: string;
  stats(): ConnectorStats;
  /** Writes every pending reading now. */
  flush(): Promise<void>;
  /**
   * Graceful stop: no new requests, readings flushed, sockets closed. Registrations stay in the store and twins stay
   * connected: the next start takes them up again.
   */
  close(): Promise<void>;
}

export async function startConnector(options: ConnectorOptions): Promise<RunningConnector> {
  const { store, config, log } = options;
  const now = options.now ?? Date.now;
  const events = options.events ? new EventQueue(options.events, { log, now }) : undefined;
  const registrations = options.registrations ?? new MemoryRegistrationStore();
  // DTLS first, so the credentials can install their keys; a revoked device (or one whose security mode changed)
  // loses its registration at once.
  const dtls = options.credentials
    ? await DtlsTransport.bind(config.coapAddress, config.coapsPort ?? DEFAULT_COAPS_PORT, { now })
    : undefined;
  const credentials = dtls
    ? new CredentialCache({
        keyring: dtls.server,
        log,
        onChange: (change) => {
          if (change.endRegistration) lwm2m.endRegistration(change.deviceId);
        },
      })
    : undefined;
  const lwm2m = new Lwm2mServer({
    store,
    registrations,
    readings: {
      sink: options.readingsSink ?? store,
      batchMs: config.notifyBatchMs,
      maxConcurrentWrites: config.maxConcurrentTwinWrites,
    },
    events,
    log,
    now,
    instanceId: config.instanceId,
    connectorUrl: config.apiUrl,
    observation: config.observation,
    deviceTimeoutMs: config.deviceTimeoutSeconds * 1000,
    awakeWindowMs: (config.awakeWindowSeconds ?? DEFAULT_AWAKE_WINDOW_SECONDS) * 1000,
    shortServerId: config.shortServerId,
    credentials,
    onDeviceAwake: options.onDeviceAwake,
  });
  const writer = lwm2m.writer;
  if (options.credentials && credentials) {
    const devices = await options.credentials.start((records) => credentials.apply(records));
    log.info('credentials loaded', { devices });
  }
  const loadStarted = Date.now();
  const loaded = await registrations.loadAll(config.instanceId);
  const endpoint =
    config.plainCoapEnabled === false
      ? undefined
      : await CoapEndpoint.bind(config.coapAddress, config.coapPort, {
          log,
          now,
          onRequest: lwm2m.handleRequest('coap'),
          onUnmatchedNotification: lwm2m.unmatchedNotification('coap'),
        });
  const secure =
    dtls &&
    CoapEndpoint.over(dtls, {
      log,
      now,
      onRequest: lwm2m.handleRequest('coaps'),
      onUnmatchedNotification: lwm2m.unmatchedNotification('coaps'),
    });
  // Synchronously after the bind: the endpoints deliver no datagram before the stored observations are back.
  if (endpoint) lwm2m.attach('coap', endpoint);
  if (secure) lwm2m.attach('coaps', secure);
  const taken = lwm2m.restore(loaded);
  const restored = { registrations: taken.restored, expired: taken.expired, ms: Date.now() - loadStarted };
  if (loaded.length > 0) log.info('registrations restored', restored);

  const stats = (): ConnectorStats => ({
    instanceId: config.instanceId,
    registrations: lwm2m.registry.size,
    restored,
    registrationGate: { ...lwm2m.gate.stats },
    observations: (endpoint?.observationCount ?? 0) + (secure?.observationCount ?? 0),
    pendingReadings: writer.pending,
    readings: { ...writer.stats },
    events: events && { ...events.stats },
    coap: endpoint && { ...endpoint.stats },
    coaps: secure && { ...secure.stats },
    dtls: dtls?.stats(),
    credentials: credentials?.size,
  });
  const api = createInternalApi({
    operations: {
      read: (deviceId, entry, timeoutMs) => lwm2m.devices.read(deviceId, entry, timeoutMs),
      write: (deviceId, entry, value, timeoutMs) => lwm2m.devices.write(deviceId, entry, value, timeoutMs),
      execute: (deviceId, entry, timeoutMs) => lwm2m.devices.execute(deviceId, entry, timeoutMs),
      endRegistration: (deviceId) => lwm2m.endRegistration(deviceId),
      health: () => ({ ...stats() }),
    },
    apiKey: config.apiKey,
    deviceTimeoutMs: config.deviceTimeoutSeconds * 1000,
    log,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      api.once('error', reject);
      api.listen(config.apiPort, config.apiAddress, () => {
        api.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await endpoint?.close();
    await secure?.close();
    await options.credentials?.stop();
    throw error;
  }
  const apiPort = (api.address() as AddressInfo).port;
  const sweep = setInterval(() => lwm2m.sweepExpired(), config.expirySweepMs);
  log.info('connector started', {
    instanceId: config.instanceId,
    coap: endpoint ? `${config.coapAddress}:${endpoint.port}` : 'off',
    coaps: secure ? `${config.coapAddress}:${secure.port}` : 'off',
    api: `${config.apiAddress}:${apiPort}`,
  });

  let closing: Promise<void> | undefined;
  const close = async () => {
    clearInterval(sweep);
    const apiClosed = new Promise<void>((resolve) => api.close(() => resolve()));
    api.closeIdleConnections();
    // Sockets first: no more notifications; then the registrations end and the readings reach the twins.
    lwm2m.stopAccepting();
    await options.credentials?.stop();
    await endpoint?.close();
    await secure?.close();
    await lwm2m.close();
    await writer.close();
    await events?.drain(EVENTS_DRAIN_TIMEOUT_MS);
    await apiClosed;
    log.info('connector stopped', { instanceId: config.instanceId, persisted: writer.stats.persisted });
  };

  return {
    coapPort: endpoint?.port ?? 0,
    coapsPort: secure?.port,
    apiPort,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    stats,
    flush: () => writer.flush(),
    close: () => (closing ??= close()),
  };
}
