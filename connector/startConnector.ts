/**
 * Starts the connector in-process from injected parts: the twin store, the configuration, a logger and a clock.
 * `connector/main.ts` wires it to Cosmos and signals; tests and benchmarks start it on port 0.
 */
import { AddressInfo } from 'node:net';
import { findProperty, observationFor } from '../shared/catalog';
import { ConnectorConfig } from '../shared/config';
import { TwinStore } from '../shared/twinStore';
import { EventPublisher } from '../shared/twinEvents';
import { CoapEndpoint, EndpointStats } from './coap/coapEndpoint';
import { EventQueue, EventQueueStats } from './eventQueue';
import { createInternalApi } from './internalApi';
import { Logger } from './logger';
import { Lwm2mServer } from './lwm2mServer';
import { ReadingsSink, ReadingsWriter, ReadingsWriterStats } from './readingsWriter';

/** The config fields the connector itself uses (the Cosmos and Service Bus sections are for the composition root). */
export type ConnectorSettings = Omit<ConnectorConfig, 'cosmos' | 'serviceBus' | 'serviceBusTransport'>;

/** How long a stop waits for twin events still being sent (the disconnects it just wrote among them). */
const EVENTS_DRAIN_TIMEOUT_MS = 5_000;

export interface ConnectorOptions {
  /** Registrations and connection state go here (and readings, unless `readingsSink` is given). */
  store: TwinStore;
  /** Where readings are written (main.ts: a `ThreadedReadingsSink`); default `store`. Not closed by the connector. */
  readingsSink?: ReadingsSink;
  /**
   * `twin-events`: deviceConnected, deviceDisconnected and notify-driven propertyFresh (default: none). Not closed by
   * the connector; `close()` waits until the events emitted so far are sent, at most 5 s.
   */
  events?: EventPublisher;
  config: ConnectorSettings;
  log: Logger;
  /** Wall clock, ms since the epoch (default Date.now). */
  now?: () => number;
}

export interface ConnectorStats {
  instanceId: string;
  registrations: number;
  observations: number;
  pendingReadings: number;
  readings: ReadingsWriterStats;
  /** Absent when the connector runs without an event publisher. */
  events?: EventQueueStats;
  coap: EndpointStats;
}

export interface RunningConnector {
  /** The bound UDP port of the LwM2M server. */
  coapPort: number;
  /** The bound TCP port of the internal API, and a loopback URL for it. */
  apiPort: number;
  apiUrl: string;
  stats(): ConnectorStats;
  /** Writes every pending reading now. */
  flush(): Promise<void>;
  /** Graceful stop: no new requests, registrations ended (twins disconnected), readings flushed, sockets closed. */
  close(): Promise<void>;
}

export async function startConnector(options: ConnectorOptions): Promise<RunningConnector> {
  const { store, config, log } = options;
  const now = options.now ?? Date.now;
  const fallback = (name: string) => {
    const entry = findProperty(name);
    if (!entry) throw new Error(`reading for unknown property ${name}`);
    return observationFor(entry, config.observation);
  };
  const events = options.events ? new EventQueue(options.events, { log, now }) : undefined;
  const writer = new ReadingsWriter({
    sink: options.readingsSink ?? store,
    events,
    fallback,
    batchMs: config.notifyBatchMs,
    maxConcurrentWrites: config.maxConcurrentTwinWrites,
    log,
    now,
  });
  const server = new Lwm2mServer({
    store,
    writer,
    events,
    log,
    now,
    instanceId: config.instanceId,
    connectorUrl: config.apiUrl,
    observation: config.observation,
    deviceTimeoutMs: config.deviceTimeoutSeconds * 1000,
  });
  const endpoint = await CoapEndpoint.bind(config.coapAddress, config.coapPort, {
    log,
    now,
    onRequest: server.handleRequest,
  });

  const stats = (): ConnectorStats => ({
    instanceId: config.instanceId,
    registrations: server.registry.size,
    observations: endpoint.observationCount,
    pendingReadings: writer.pending,
    readings: { ...writer.stats },
    events: events && { ...events.stats },
    coap: { ...endpoint.stats },
  });
  const api = createInternalApi({
    operations: {
      read: (deviceId, entry, timeoutMs) => server.read(deviceId, entry, timeoutMs),
      write: (deviceId, entry, value, timeoutMs) => server.write(deviceId, entry, value, timeoutMs),
      execute: (deviceId, entry, timeoutMs) => server.execute(deviceId, entry, timeoutMs),
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
    await endpoint.close();
    throw error;
  }
  const apiPort = (api.address() as AddressInfo).port;
  const sweep = setInterval(() => server.sweepExpired(), config.expirySweepMs);
  log.info('connector started', {
    instanceId: config.instanceId,
    coap: `${config.coapAddress}:${endpoint.port}`,
    api: `${config.apiAddress}:${apiPort}`,
  });

  let closing: Promise<void> | undefined;
  const close = async () => {
    clearInterval(sweep);
    const apiClosed = new Promise<void>((resolve) => api.close(() => resolve()));
    api.closeIdleConnections();
    // Sockets first: no more notifications; then the registrations end and the readings reach the twins.
    server.stopAccepting();
    await endpoint.close();
    await server.close();
    await writer.close();
    await events?.drain(EVENTS_DRAIN_TIMEOUT_MS);
    await apiClosed;
    log.info('connector stopped', { instanceId: config.instanceId, persisted: writer.stats.persisted });
  };

  return {
    coapPort: endpoint.port,
    apiPort,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    stats,
    flush: () => writer.flush(),
    close: () => (closing ??= close()),
  };
}
