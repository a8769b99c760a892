/**
 * Device jobs: a deep read, a deep write or an execute, run on the device through the connector.
 * The job model, its validation against the catalog, and the shape of its queue message. Pure: no SDK imports.
 *
 * A job request is the same JSON whether it comes from `POST /api/jobs` or is put on the queue by automation;
 * the queue message is the request plus its `jobId`.
 */
import { CATALOG_NAMES, CatalogEntry, PropertyValue, findProperty, validateValue } from './catalog';
import { validateDeviceId } from './deviceId';
import { JOBS_TTL_SECONDS } from './constants';
import { ErrorCode, TwinError } from './errors';

export const JOB_TYPES = ['readDeviceProperty', 'writeDeviceProperty', 'executeDeviceOperation'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/**
 * `queued` -> `running` -> `completed` | `failed`; `queued` -> `cancelled`. A transient failure goes back to `queued`.
 * A queue-mode device that is asleep parks the job: `running` -> `waiting`, until the device's next Register/Update
 * sends its message again (`waiting` -> `running`), or its `expiresAt` passes (`waiting` -> `failed`, `DeviceAsleep`);
 * `waiting` -> `cancelled`.
 */
export type JobStatus = 'queued' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';

/** Statuses a job may be cancelled in: it is not on the device now. */
export const CANCELLABLE_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(['queued', 'waiting']);

/** Largest `ttlSeconds` a job request may carry: the job record's own retention (7 days). */
export const MAX_JOB_TTL_SECONDS = JOBS_TTL_SECONDS;

/** Statuses a job never leaves: a message for such a job is settled without running it again. */
export const FINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

/** Job ids: 1-128 characters (Service Bus message ids hold 128), letters, digits and `-._:@`, the first a letter or digit. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9\-._:@]{0,127}$/;

export type JobRequest =
  | { type: 'readDeviceProperty'; deviceId: string; property: string }
  | { type: 'writeDeviceProperty'; deviceId: string; property: string; value: PropertyValue }
  | { type: 'executeDeviceOperation'; deviceId: string; operation: string };

/**
 * The Service Bus message body (queue `device-jobs`, messageId = jobId, sessionId = deviceId). `ttlSeconds` is the
 * request's, for a job whose record the job function creates (automation); a job with a record keeps its `expiresAt`.
 */
export type JobMessage = JobRequest & { jobId: string; ttlSeconds?: number };

export interface JobError {
  /** Stable: clients may switch on it. */
  code: ErrorCode;
  message: string;
  /** With `MayHaveRun`: the code of the failure behind it (for example `DeviceTimeout`). */
  cause?: ErrorCode;
}

/** What a completed deep read found: the device's value and when it was received. */
export interface JobResult {
  value: PropertyValue;
  lastUpdatedTime: string;
}

/** Cosmos `jobs` container, partition key `/deviceId`, id = jobId. Times are ISO-8601 UTC. */
export interface JobDocument {
  /** The jobId. */
  id: string;
  deviceId: string;
  type: JobType;
  property?: string;
  operation?: string;
  value?: PropertyValue;
  status: JobStatus;
  createdTime: string;
  /**
   * When the job's queue message is known to exist: stamped after a send the queue accepted, or by the first
   * delivery. A `queued` job without it may have no message; the unsent-job sweep re-sends or fails it.
   */
  sentTime?: string;
  /** When the first attempt began. */
  startedTime?: string;
  /** When the job reached a final status. */
  endTime?: string;
  /** Attempts made on the device (each delivery that ran the job counts one). */
  attempts: number;
  /** A completed read's value. */
  result?: JobResult;
  /**
   * Why a failed job failed. `MayHaveRun` when a write or execute failed after an attempt whose outcome is unknown:
   * the device may have applied it.
   */
  error?: JobError;
  /**
   * The last transient failure, while the job waits for its next delivery. `MayHaveRun` once a write or execute was
   * sent and its outcome is unknown (the device did not answer in time, the connector went away mid-request):
   * the next attempt may apply it a second time.
   */
  lastError?: JobError;
  /** Where the job came from: the HTTP API, or a message put on the queue directly. */
  origin: 'api' | 'queue';
  /**
   * From the request's `ttlSeconds` (createdTime + ttlSeconds), or set when the job first waits for a sleeping device
   * (then + `Jobs__maxWaitForDeviceSeconds`): a job still `waiting` at this time fails with `DeviceAsleep`, and a
   * delivery that finds it past this time does not run it.
   */
  expiresAt?: string;
  /** While `waiting`: since when the job waits for its queue-mode device to wake (also names its wake message). */
  waitingSince?: string;
  /** Cosmos TTL, seconds after the last write. */
  ttl: number;
  /** Cosmos system property, present on documents read from the store. */
  _etag?: string;
}

/** What the HTTP API shows of a job. */
export interface JobView {
  jobId: string;
  type: JobType;
  deviceId: string;
  property?: string;
  operation?: string;
  value?: PropertyValue;
  status: JobStatus;
  createdTime: string;
  sentTime?: string;
  startedTime?: string;
  endTime?: string;
  attempts: number;
  result?: JobResult;
  error?: JobError;
  lastError?: JobError;
  origin: 'api' | 'queue';
  expiresAt?: string;
  waitingSince?: string;
}

const REQUEST_FIELDS: Record<JobType, readonly string[]> = {
  readDeviceProperty: ['type', 'deviceId', 'property'],
  writeDeviceProperty: ['type', 'deviceId', 'property', 'value'],
  executeDeviceOperation: ['type', 'deviceId', 'operation'],
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(field: string, detail: string): TwinError {
  return new TwinError('InvalidRequest', detail, { field });
}

export function validateJobId(jobId: unknown, field = 'jobId'): string {
  if (typeof jobId !== 'string' || !JOB_ID_PATTERN.test(jobId)) {
    throw invalid(
      field,
      `${field} must be 1-128 letters, digits and - . _ : @, starting with a letter or digit; got ${describe(jobId)}`,
    );
  }
  return jobId;
}

/**
 * Validates a job request (an HTTP body or a queue message) against the catalog. Errors are TwinErrors whose
 * `field` names what to fix: 400 for a malformed body or value, 422 for a property that cannot do what the
 * type asks. Returns the request and the optional client `jobId`.
 */
export function parseJobRequest(body: unknown): { request: JobRequest; jobId?: string; ttlSeconds?: number } {
  if (!isPlainObject(body)) throw invalid('', 'The body must be a JSON object');
  const type = body.type;
  if (typeof type !== 'string' || !(JOB_TYPES as readonly string[]).includes(type)) {
    throw invalid('type', `type must be one of ${JOB_TYPES.join(', ')}; got ${describe(type)}`);
  }
  const jobType = type as JobType;
  for (const key of Object.keys(body)) {
    if (key !== 'jobId' && key !== 'ttlSeconds' && !REQUEST_FIELDS[jobType].includes(key)) {
      throw invalid(
        key,
        `${key} is not a field of a ${jobType} job (fields: ${REQUEST_FIELDS[jobType].join(', ')}, jobId, ttlSeconds)`,
      );
    }
  }
  const ttlSeconds = body.ttlSeconds === undefined ? undefined : validateTtlSeconds(body.ttlSeconds);
  if (typeof body.deviceId !== 'string') {
    throw new TwinError('InvalidDeviceId', `deviceId must be a string; got ${describe(body.deviceId)}`, {
      field: 'deviceId',
    });
  }
  const deviceId = validateDeviceId(body.deviceId);
  const jobId = body.jobId === undefined ? undefined : validateJobId(body.jobId);
  switch (jobType) {
    case 'readDeviceProperty': {
      const entry = catalogEntry(body.property, 'property');
      if (!entry.readable) {
        throw new TwinError('PropertyNotReadable', `${entry.name} is ${capability(entry)}: it cannot be read`, {
          field: 'property',
        });
      }
      return { request: { type: jobType, deviceId, property: entry.name }, jobId, ttlSeconds };
    }
    case 'writeDeviceProperty': {
      const entry = catalogEntry(body.property, 'property');
      if (!entry.writable) {
        throw new TwinError('PropertyNotWritable', `${entry.name} is ${capability(entry)}: it cannot be written`, {
          field: 'property',
        });
      }
      if (!('value' in body)) throw new TwinError('InvalidValue', 'value is required to write', { field: 'value' });
      const check = validateValue(entry, body.value);
      if (!check.ok) throw new TwinError('InvalidValue', check.reason, { field: 'value' });
      return { request: { type: jobType, deviceId, property: entry.name, value: check.value }, jobId, ttlSeconds };
    }
    case 'executeDeviceOperation': {
      const entry = catalogEntry(body.operation, 'operation');
      if (!entry.executable) {
        throw new TwinError('OperationNotExecutable', `${entry.name} is ${capability(entry)}, not an operation`, {
          field: 'operation',
        });
      }
      return { request: { type: jobType, deviceId, operation: entry.name }, jobId, ttlSeconds };
    }
  }
}

/** Validates a queue message body: a job request with a `jobId`. A string or bytes body is parsed as JSON first. */
export function parseJobMessage(body: unknown): JobMessage {
  let json = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      json = JSON.parse(body.toString());
    } catch (error) {
      throw new TwinError('InvalidJson', `The message body is not JSON: ${(error as Error).message}`, { field: '' });
    }
  }
  const { request, jobId, ttlSeconds } = parseJobRequest(json);
  if (jobId === undefined) throw invalid('jobId', 'A job message needs a jobId (it is also its messageId)');
  return { ...request, jobId, ...(ttlSeconds !== undefined && { ttlSeconds }) };
}

/**
 * A job's time-to-live: how long after its submission it may wait for a sleeping (queue-mode) device, whole seconds
 * from 1 to `MAX_JOB_TTL_SECONDS`.
 */
export function validateTtlSeconds(ttlSeconds: unknown): number {
  if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds) || ttlSeconds < 1) {
    throw invalid('ttlSeconds', `ttlSeconds must be a positive whole number of seconds; got ${describe(ttlSeconds)}`);
  }
  if (ttlSeconds > MAX_JOB_TTL_SECONDS) {
    throw invalid('ttlSeconds', `ttlSeconds must be at most ${MAX_JOB_TTL_SECONDS} (7 days); got ${ttlSeconds}`);
  }
  return ttlSeconds;
}

function catalogEntry(name: unknown, field: 'property' | 'operation'): CatalogEntry {
  if (typeof name !== 'string' || name === '') {
    throw invalid(field, `${field} must be a catalog name; got ${describe(name)}`);
  }
  const entry = findProperty(name);
  if (!entry) {
    throw invalid(field, `Unknown ${field} "${name}"; the catalog has: ${CATALOG_NAMES.join(', ')}`);
  }
  return entry;
}

function capability(entry: CatalogEntry): string {
  if (entry.executable) return 'an operation';
  if (entry.readable && !entry.writable) return 'read-only';
  if (entry.writable && !entry.readable) return 'write-only';
  return 'readable and writable';
}

/** The request part of a job document or message, for comparing idempotent submissions. */
export function jobRequestOf(job: JobDocument | JobMessage): JobRequest {
  switch (job.type) {
    case 'readDeviceProperty':
      return { type: job.type, deviceId: job.deviceId, property: job.property as string };
    case 'writeDeviceProperty':
      return {
        type: job.type,
        deviceId: job.deviceId,
        property: job.property as string,
        value: job.value as PropertyValue,
      };
    case 'executeDeviceOperation':
      return { type: job.type, deviceId: job.deviceId, operation: job.operation as string };
  }
}

export function sameJobRequest(a: JobRequest, b: JobRequest): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(request: JobRequest): unknown[] {
  const loose = request as { property?: string; operation?: string; value?: PropertyValue };
  return [request.type, request.deviceId, loose.property ?? null, loose.operation ?? null, loose.value ?? null];
}

/**
 * A new job record, status `queued`. `ttlSeconds` is the Cosmos retention; `jobTtlSeconds`, the request's time-to-live,
 * sets `expiresAt`.
 */
export function newJob(
  jobId: string,
  request: JobRequest,
  origin: JobDocument['origin'],
  now: string,
  ttlSeconds: number,
  jobTtlSeconds?: number,
): JobDocument {
  const job: JobDocument = {
    id: jobId,
    ...request,
    status: 'queued',
    createdTime: now,
    attempts: 0,
    origin,
    ttl: ttlSeconds,
  };
  if (jobTtlSeconds !== undefined) job.expiresAt = new Date(Date.parse(now) + jobTtlSeconds * 1000).toISOString();
  return job;
}

/** The queue message of a job. */
export function toJobMessage(job: JobDocument): JobMessage {
  return { ...jobRequestOf(job), jobId: job.id };
}

export function toJobView(job: JobDocument): JobView {
  const view: JobView = {
    jobId: job.id,
    type: job.type,
    deviceId: job.deviceId,
    status: job.status,
    createdTime: job.createdTime,
    attempts: job.attempts,
    origin: job.origin,
  };
  if (job.property !== undefined) view.property = job.property;
  if (job.operation !== undefined) view.operation = job.operation;
  if (job.value !== undefined) view.value = job.value;
  if (job.sentTime !== undefined) view.sentTime = job.sentTime;
  if (job.startedTime !== undefined) view.startedTime = job.startedTime;
  if (job.endTime !== undefined) view.endTime = job.endTime;
  if (job.result !== undefined) view.result = job.result;
  if (job.error !== undefined) view.error = job.error;
  if (job.lastError !== undefined && job.status !== 'completed') view.lastError = job.lastError;
  if (job.expiresAt !== undefined) view.expiresAt = job.expiresAt;
  if (job.waitingSince !== undefined && job.status === 'waiting') view.waitingSince = job.waitingSince;
  return view;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : `"${value}"`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return Array.isArray(value) ? 'an array' : typeof value;
}
