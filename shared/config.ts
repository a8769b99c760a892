/**
 * The one typed configuration module. Environment names equal the Bicep app settings; a missing
 * required setting fails at start with a message that names it.
 *
 * Identity-based settings follow the Functions conventions: `<Connection>__accountEndpoint`,
 * `<Connection>__fullyQualifiedNamespace`, `<Connection>__clientId`. Keys and connection strings are
 * only for the local stack (its emulators have published, non-secret keys).
 */
import { DEFAULT_OBSERVATION, ObservationDefaults, PropertyClass } from './catalog';
import { COSMOS_DATABASE_DEFAULT, SERVICE_BUS_CONNECTION } from './constants';

export type Env = Readonly<Record<string, string | undefined>>;

/** Default awake window of a queue-mode device, seconds: CoAP MAX_TRANSMIT_WAIT (RFC 7252 §4.8.2, 93 s). */
export const DEFAULT_AWAKE_WINDOW_SECONDS = 93;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface CosmosConfig {
  /** `CosmosDb__accountEndpoint`, for example `https://localhost:8081`. */
  endpoint: string;
  /** `CosmosDb__databaseName`. */
  databaseName: string;
  /** `CosmosDb__accountKey`: local emulators only; absent in Azure, where the managed identity is used. */
  key?: string;
  /** `CosmosDb__trustedCertificatePath`: a PEM trusted for this endpoint only (local self-signed server). */
  trustedCertificatePath?: string;
  /** `AZURE_CLIENT_ID`: the user-assigned managed identity, in Azure. */
  managedIdentityClientId?: string;
}

export interface ServiceBusConfig {
  /** `ServiceBusConnection`: a connection string (local endpoint, `UseDevelopmentEmulator=true`). */
  connectionString?: string;
  /** `ServiceBusConnection__fullyQualifiedNamespace`: identity-based, in Azure. */
  fullyQualifiedNamespace?: string;
  managedIdentityClientId?: string;
}

export interface FunctionsConfig {
  cosmos: CosmosConfig;
  serviceBus: ServiceBusConfig;
  /** `Connector__apiKey`: the shared key of the connector's internal API. */
  connectorApiKey: string;
  /** `Jobs__deviceTimeoutSeconds`: bound on one device round trip made for a job. */
  jobDeviceTimeoutSeconds: number;
  jobs: JobsConfig;
  /** `Staleness__graceSeconds`: how late a notify may be before its property is stale. */
  stalenessGraceSeconds: number;
  /** `Staleness__schedule`: six-field NCRONTAB of the sweep. */
  stalenessSchedule: string;
}

export interface JobsConfig {
  /** `Jobs__deviceTimeoutSeconds`: bound on one device round trip made for a job (default 30). */
  deviceTimeoutSeconds: number;
  /**
   * `Jobs__maxDeliveryCount`: the `device-jobs` queue's maxDeliveryCount (default 10, as in infra/ and
   * local/serviceBus/entities.json). The delivery with this count is the last: a transient failure then fails the job.
   */
  maxDeliveryCount: number;
  /**
   * `Jobs__retryDelaySeconds` / `Jobs__maxRetryDelaySeconds`: after a transient failure the job function waits
   * this long (doubling per delivery, capped; defaults 1 and 30) before it throws, so redeliveries spread over
   * minutes instead of burning the delivery count in milliseconds. The session lock is renewed meanwhile.
   */
  retryDelaySeconds: number;
  maxRetryDelaySeconds: number;
  /** `Jobs__queuedSweepSchedule`: six-field NCRONTAB of the unsent-job sweep (default every minute). */
  queuedSweepSchedule: string;
  /**
   * `Jobs__queuedSweepAfterSeconds`: a `queued` job without `sentTime` this long after its creation has its message
   * sent again by the sweep (default 120). Below the queue's duplicate-detection window (10 min locally, 1 h in
   * infra/), so that a re-send of a message that did land is dropped.
   */
  queuedSweepAfterSeconds: number;
  /**
   * `Jobs__queuedMaxAgeSeconds`: a `queued` job still without `sentTime` this long after its creation is failed
   * with `JobQueueUnavailable` instead (default 1800; above `queuedSweepAfterSeconds`).
   */
  queuedMaxAgeSeconds: number;
  /**
   * `Jobs__maxWaitForDeviceSeconds`: how long a job without `ttlSeconds` waits for its sleeping queue-mode device
   * before it fails with `DeviceAsleep` (default 86400, one day, the default registration lifetime).
   */
  maxWaitForDeviceSeconds: number;
}

export const SERVICE_BUS_TRANSPORTS = ['amqp', 'amqpWebSockets'] as const;
export type ServiceBusTransport = (typeof SERVICE_BUS_TRANSPORTS)[number];

export interface ConnectorConfig {
  cosmos: CosmosConfig;
  /** Where the connector publishes twin events (the `twin-events` topic). */
  serviceBus: ServiceBusConfig;
  /** `Connector__instanceId`: this instance's name, recorded in the twins it holds. */
  instanceId: string;
  /** `Connector__coapPort`: UDP port of the LwM2M server (5683). */
  coapPort: number;
  /** `Connector__coapAddress`: address to bind (default `::`, all interfaces). */
  coapAddress: string;
  /**
   * `Connector__plainCoapEnabled`: serve plain CoAP on `coapPort` for devices provisioned with `security: none`
   * (default true; Azure turns it off unless a deployment parameter opens it). Optional for in-process starts.
   */
  plainCoapEnabled?: boolean;
  /**
   * `Connector__coapsPort`: UDP port of CoAP over DTLS 1.2 with pre-shared keys (5684). Optional for in-process starts
   * (tests, benchmarks): without it, and without a credential source, no DTLS endpoint runs.
   */
  coapsPort?: number;
  /** `Connector__apiPort`: TCP port of the internal HTTP API. */
  apiPort: number;
  /** `Connector__apiUrl`: how the Functions app reaches this instance's internal API. */
  apiUrl: string;
  /** `Connector__apiKey`: the shared key callers of the internal API present. */
  apiKey: string;
  /** `Connector__deviceTimeoutSeconds`: bound on one device request, retransmissions included. */
  deviceTimeoutSeconds: number;
  /**
   * `Connector__awakeWindowSeconds`: how long a queue-mode device stays reachable after its last message (default 93 s,
   * CoAP's MAX_TRANSMIT_WAIT, as LwM2M Transport §6.5 suggests); requests for it after that wait for its next
   * Register/Update. Optional for in-process starts (tests, benchmarks), which get the default.
   */
  awakeWindowSeconds?: number;
  /**
   * `Connector__shortServerId`: this server's Short Server ID (1-65534). A device that announces several Server object
   * instances has each one's `/1/x/0` read once, and the instance with this id is this server's. Absent or 0 (none,
   * the default): the lowest instance, unread. A device with one Server object instance uses it either way.
   */
  shortServerId?: number;
  /** `Observe__<class>__pmin` / `__pmax`: observation attributes per property class, in seconds. */
  observation: ObservationDefaults;
  /** `Connector__apiAddress`: address the internal HTTP API binds (default `::`, all interfaces). */
  apiAddress: string;
  /** `Staleness__graceSeconds`: the staleness grace, for the `nextStaleAt` the connector's twin writes compute. */
  stalenessGraceSeconds: number;
  /**
   * `Connector__notifyBatchMs`: notifications of one device arriving within this window (ms, default 100) go to
   * Cosmos as one write; a device whose previous write is still running collects them until it ends.
   */
  notifyBatchMs: number;
  /** `Connector__maxConcurrentTwinWrites`: twin store calls in flight at once, each up to 100 devices (default 4). */
  maxConcurrentTwinWrites: number;
  /** `Connector__expirySweepMs`: how often registrations whose lifetime ran out are looked for (ms, default 1000). */
  expirySweepMs: number;
  /**
   * `Connector__serviceBusTransport`: `amqp` (default; TCP 5671, or the local endpoint's port) or `amqpWebSockets`
   * (AMQP inside TLS WebSockets on 443). In Azure the connector's egress passes a firewall that can allow one
   * namespace by host name only for TLS from the first byte, which AMQP's TLS upgrade on 5671 is not.
   */
  serviceBusTransport: ServiceBusTransport;
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') {
    throw new ConfigError(`Missing app setting ${name}`);
  }
  return value;
}

function optional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min = 0): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`App setting ${name} must be an integer >= ${min}; got "${raw}"`);
  }
  return value;
}

/** `true` or `false`, any case (ARM's `string(bool)` gives `True`/`False`). */
function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const lower = raw.trim().toLowerCase();
  if (lower === 'true' || lower === 'false') return lower === 'true';
  throw new ConfigError(`App setting ${name} must be true or false; got "${raw}"`);
}

/** Largest Short Server ID (LwM2M object 1 resource 0: 1-65534; 0 and 65535 are reserved). */
const MAX_SHORT_SERVER_ID = 65_534;

/** `Connector__shortServerId`: 1-65534, or undefined when absent or 0 (none). */
function shortServerId(env: Env): number | undefined {
  const value = integer(env, 'Connector__shortServerId', 0);
  if (value > MAX_SHORT_SERVER_ID) {
    throw new ConfigError(
      `App setting Connector__shortServerId must be a Short Server ID from 1 to ${MAX_SHORT_SERVER_ID} (0: none); got "${value}"`,
    );
  }
  return value === 0 ? undefined : value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = optional(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}; got "${value}"`);
  }
  return value as T;
}

export function loadCosmosConfig(env: Env): CosmosConfig {
  return {
    endpoint: required(env, 'CosmosDb__accountEndpoint'),
    databaseName: optional(env, 'CosmosDb__databaseName') ?? COSMOS_DATABASE_DEFAULT,
    key: optional(env, 'CosmosDb__accountKey'),
    trustedCertificatePath: optional(env, 'CosmosDb__trustedCertificatePath'),
    managedIdentityClientId: optional(env, 'AZURE_CLIENT_ID'),
  };
}

export function loadServiceBusConfig(env: Env): ServiceBusConfig {
  const connectionString = optional(env, SERVICE_BUS_CONNECTION);
  const fullyQualifiedNamespace = optional(env, `${SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace`);
  if (!connectionString && !fullyQualifiedNamespace) {
    throw new ConfigError(
      `Missing app setting ${SERVICE_BUS_CONNECTION}__fullyQualifiedNamespace (or ${SERVICE_BUS_CONNECTION} locally)`,
    );
  }
  return {
    connectionString,
    fullyQualifiedNamespace,
    managedIdentityClientId: optional(env, `${SERVICE_BUS_CONNECTION}__clientId`) ?? optional(env, 'AZURE_CLIENT_ID'),
  };
}

export function loadObservationDefaults(env: Env): ObservationDefaults {
  const classes: PropertyClass[] = ['device', 'firmwareUpdate', 'server'];
  const result = {} as Record<PropertyClass, { pmin: number; pmax: number }>;
  for (const propertyClass of classes) {
    const defaults = DEFAULT_OBSERVATION[propertyClass];
    const pmin = integer(env, `Observe__${propertyClass}__pmin`, defaults.pmin);
    const pmax = integer(env, `Observe__${propertyClass}__pmax`, defaults.pmax, 1);
    if (pmax < pmin) {
      throw new ConfigError(`Observe__${propertyClass}__pmax (${pmax}) must not be below pmin (${pmin})`);
    }
    result[propertyClass] = { pmin, pmax };
  }
  return result;
}

export interface StalenessConfig {
  /** `Staleness__graceSeconds`: how late a notify may be before its property is stale (default 93 s, CoAP's MAX_TRANSMIT_WAIT). */
  graceSeconds: number;
  /** `Staleness__schedule`: six-field NCRONTAB of the sweep (default every minute). */
  schedule: string;
}

export function loadStalenessConfig(env: Env = process.env): StalenessConfig {
  return {
    graceSeconds: integer(env, 'Staleness__graceSeconds', 93),
    schedule: optional(env, 'Staleness__schedule') ?? '0 */1 * * * *',
  };
}

/** `Connector__apiKey`, for the app's client of the connectors' internal API. */
export function loadConnectorApiKey(env: Env = process.env): string {
  return required(env, 'Connector__apiKey');
}

export function loadJobsConfig(env: Env = process.env): JobsConfig {
  const retryDelaySeconds = integer(env, 'Jobs__retryDelaySeconds', 1);
  const maxRetryDelaySeconds = integer(env, 'Jobs__maxRetryDelaySeconds', 30);
  if (maxRetryDelaySeconds < retryDelaySeconds) {
    throw new ConfigError(
      `Jobs__maxRetryDelaySeconds (${maxRetryDelaySeconds}) must not be below Jobs__retryDelaySeconds (${retryDelaySeconds})`,
    );
  }
  const queuedSweepAfterSeconds = integer(env, 'Jobs__queuedSweepAfterSeconds', 120, 1);
  const queuedMaxAgeSeconds = integer(env, 'Jobs__queuedMaxAgeSeconds', 1800, 1);
  if (queuedMaxAgeSeconds <= queuedSweepAfterSeconds) {
    throw new ConfigError(
      `Jobs__queuedMaxAgeSeconds (${queuedMaxAgeSeconds}) must be above Jobs__queuedSweepAfterSeconds (${queuedSweepAfterSeconds})`,
    );
  }
  return {
    deviceTimeoutSeconds: integer(env, 'Jobs__deviceTimeoutSeconds', 30, 1),
    maxDeliveryCount: integer(env, 'Jobs__maxDeliveryCount', 10, 1),
    retryDelaySeconds,
    maxRetryDelaySeconds,
    queuedSweepSchedule: optional(env, 'Jobs__queuedSweepSchedule') ?? '0 */1 * * * *',
    queuedSweepAfterSeconds,
    queuedMaxAgeSeconds,
    maxWaitForDeviceSeconds: integer(env, 'Jobs__maxWaitForDeviceSeconds', 86_400, 1),
  };
}

/** The whole Functions app configuration; functions load the sections they use, lazily. */
export function loadFunctionsConfig(env: Env = process.env): FunctionsConfig {
  const staleness = loadStalenessConfig(env);
  const jobs = loadJobsConfig(env);
  return {
    cosmos: loadCosmosConfig(env),
    serviceBus: loadServiceBusConfig(env),
    connectorApiKey: loadConnectorApiKey(env),
    jobDeviceTimeoutSeconds: jobs.deviceTimeoutSeconds,
    jobs,
    stalenessGraceSeconds: staleness.graceSeconds,
    stalenessSchedule: staleness.schedule,
  };
}

export function loadConnectorConfig(env: Env = process.env): ConnectorConfig {
  const apiPort = integer(env, 'Connector__apiPort', 8080);
  return {
    cosmos: loadCosmosConfig(env),
    serviceBus: loadServiceBusConfig(env),
    instanceId: optional(env, 'Connector__instanceId') ?? 'connector-0',
    coapPort: integer(env, 'Connector__coapPort', 5683),
    coapAddress: optional(env, 'Connector__coapAddress') ?? '::',
    plainCoapEnabled: boolean(env, 'Connector__plainCoapEnabled', true),
    coapsPort: integer(env, 'Connector__coapsPort', 5684),
    apiPort,
    apiUrl: optional(env, 'Connector__apiUrl') ?? `http://127.0.0.1:${apiPort}`,
    apiKey: required(env, 'Connector__apiKey'),
    deviceTimeoutSeconds: integer(env, 'Connector__deviceTimeoutSeconds', 20, 1),
    awakeWindowSeconds: integer(env, 'Connector__awakeWindowSeconds', DEFAULT_AWAKE_WINDOW_SECONDS, 1),
    shortServerId: shortServerId(env),
    observation: loadObservationDefaults(env),
    apiAddress: optional(env, 'Connector__apiAddress') ?? '::',
    stalenessGraceSeconds: loadStalenessConfig(env).graceSeconds,
    notifyBatchMs: integer(env, 'Connector__notifyBatchMs', 100),
    maxConcurrentTwinWrites: integer(env, 'Connector__maxConcurrentTwinWrites', 4, 1),
    expirySweepMs: integer(env, 'Connector__expirySweepMs', 1000, 1),
    serviceBusTransport: oneOf(env, 'Connector__serviceBusTransport', SERVICE_BUS_TRANSPORTS, 'amqp'),
  };
}
