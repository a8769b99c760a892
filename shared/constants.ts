/**
 * Names that the code and the Bicep templates must agree on (checked by `infra` checks in CI).
 */

/** Cosmos DB database holding both containers. */
export const COSMOS_DATABASE_DEFAULT = 'lwm2m-twins';
/** Twins container: one document per device, id = deviceId. */
export const TWINS_CONTAINER = 'twins';
/** Jobs container: one document per job, TTL on. */
export const JOBS_CONTAINER = 'jobs';
/** Partition key path of both containers. */
export const PARTITION_KEY_PATH = '/deviceId';
/** Seconds a finished job record is kept (Cosmos TTL on the jobs container). */
export const JOBS_TTL_SECONDS = 7 * 24 * 3600;

/** Session-enabled Service Bus queue carrying device jobs (sessionId = deviceId, messageId = jobId). */
export const JOBS_QUEUE = 'device-jobs';
/** Service Bus topic carrying twin events for automation. */
export const EVENTS_TOPIC = 'twin-events';

/** App setting that names the Service Bus connection, as the Functions trigger binding reads it. */
export const SERVICE_BUS_CONNECTION = 'ServiceBusConnection';

/** Header carrying the connector's internal API key. */
export const CONNECTOR_KEY_HEADER = 'x-connector-key';

/** Registrations container (the connector's durable registrations): one record per device, id = deviceId, TTL on. */
export const REGISTRATIONS_CONTAINER = 'registrations';
/** The registrations container's default TTL: -1 = TTL on, no default; each record sets its own `ttl`. */
export const REGISTRATIONS_TTL_SECONDS = -1;

/**
 * Credentials container (device PSKs, shared/deviceCredentials.ts): one record per device, id = deviceId, partition
 * key /deviceId. Written (upsert only) by the Functions app, read (point reads, change feed) only by the connector.
 */
export const CREDENTIALS_CONTAINER = 'credentials';
/** The credentials container's default TTL: -1 = TTL on, no default; only revoked records set their own `ttl`. */
export const CREDENTIALS_TTL_SECONDS = -1;
