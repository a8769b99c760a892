/**
 * Runs one delivery of a job message (queue `device-jobs`) on the device, through the connector instance that
 * holds the device's registration. The Service Bus trigger calls it once per delivery; sessions (sessionId =
 * deviceId) make one device's jobs run one at a time, in submission order.
 *
 * Contract with the trigger:
 * - resolving = complete the message. That happens when the job reached a final status, including every job that
 *   can never succeed (device deprovisioned, its twin not `connected`, `DeviceRejected`, an invalid request), and
 *   when the job was already final (redelivery never applies a job twice) or cancelled;
 * - `TransientJobError` = abandon, so Service Bus redelivers: the connector was unreachable, the device did not
 *   answer in time, or the twin says connected but the connector it names holds no registration (the connector
 *   restarted and the device has not registered again yet; each delivery re-reads the twin, so a registration at
 *   another instance is followed, and a twin that turned disconnected fails the job at once). It is thrown after a
 *   back-off (doubling per delivery), and not on the last delivery (`deliveryCount` = maxDeliveryCount), which
 *   fails the job with the last error instead;
 * - `JobMessageDeadLetter` = the message is not a job message: dead-letter it with `deadLetterReason` and
 *   `deadLetterErrorDescription` (when it names a job, that job is failed first). A trigger that does not know
 *   this convention abandons, and Service Bus dead-letters the message after maxDeliveryCount deliveries.
 *
 * Jobs are exactly-once in the job record and the twin, and at-least-once on the device: a write or execute whose
 * request may have reached the device without an answer (DeviceTimeout, the connector gone mid-request, a delivery
 * that stopped mid-run) may be applied again by the next attempt. Such an attempt is visible: the job's `lastError`
 * (and `error`, if the job then fails) is `MayHaveRun`, with the failure behind it as `cause`. A write of a readable
 * property reads the device first on every attempt after the first, and completes without writing when the device
 * already holds the value; an execute has no state to compare, so it runs again.
 *
 * Queue mode (shared/waitingJobs.ts): when the connector answers `DeviceAsleep` (a queue-mode device outside its
 * awake window), the job is parked (`waiting`) and the message completed, so no session lock is held while the device
 * sleeps; the connector sends it again at the device's next Register/Update. A delivery of a waiting job past its
 * `expiresAt` fails it with `DeviceAsleep` without running it.
 */
import { PropertyValue, findProperty } from './catalog';
import { JOBS_TTL_SECONDS } from './constants';
import { ErrorCode, TwinError, isTwinError } from './errors';
import {
  FINAL_JOB_STATUSES,
  JOB_ID_PATTERN,
  JobDocument,
  JobError,
  JobMessage,
  JobResult,
  jobRequestOf,
  newJob,
  parseJobMessage,
  sameJobRequest,
} from './job';
import { JobQueue } from './jobQueue';
import { JobStore } from './jobStore';
import { EventPublisher, JobEndStatus, jobEndedEvent, propertyFreshEvents, publishBestEffort } from './twinEvents';
import { DEVICE_ID_PATTERN } from './deviceId';
import { TwinStore } from './twinStore';
import { expiredJob, resumeWaitingJobs, waitingJob } from './waitingJobs';

/** Bound on one device round trip, ms. */
export interface DeviceCallOptions {
  timeoutMs?: number;
}

/**
 * The connector's internal API as the job function uses it (`ConnectorClient` is the real one); errors are
 * TwinErrors with the device error codes. A read's `time` is when the connector received the value (ISO).
 */
export interface DeviceConnector {
  read(
    connectorUrl: string,
    deviceId: string,
    name: string,
    options?: DeviceCallOptions,
  ): Promise<{ value: PropertyValue; time?: string }>;
  write(
    connectorUrl: string,
    deviceId: string,
    name: string,
    value: PropertyValue,
    options?: DeviceCallOptions,
  ): Promise<void>;
  execute(connectorUrl: string, deviceId: string, name: string, options?: DeviceCallOptions): Promise<void>;
}

export interface RetryPolicy {
  /** The queue's maxDeliveryCount: the delivery with this count is the last. */
  maxDeliveryCount: number;
  /** Wait before the throw after the first transient failure, ms; doubles per delivery up to `maxDelayMs`. */
  firstDelayMs: number;
  maxDelayMs: number;
}

export interface DeviceJobDependencies {
  jobs: JobStore;
  twins: TwinStore;
  connector: DeviceConnector;
  retry: RetryPolicy;
  /** Bound on one device round trip made for a job, ms (`Jobs__deviceTimeoutSeconds`). */
  deviceTimeoutMs: number;
  now: () => string;
  sleep: (ms: number) => Promise<void>;
  /** `twin-events`: jobEnded for every job that ends here, propertyFresh when a deep read clears a stale flag. */
  events: EventPublisher;
  warn: (message: string) => void;
  /** `device-jobs`: a parked job is sent again here when its device woke while it was being parked. */
  queue: JobQueue;
  /** How long a job without a time-to-live waits for a sleeping device, seconds (`Jobs__maxWaitForDeviceSeconds`). */
  maxWaitForDeviceSeconds: number;
}

/** What the trigger says about this delivery. */
export interface JobDelivery {
  /** 1 on the first delivery. */
  deliveryCount: number;
  messageId?: string;
}

export type JobRunOutcome =
  | { action: 'ran'; job: JobDocument }
  /** The job was already final (a redelivery) or cancelled: nothing was done. */
  | { action: 'skipped'; job: JobDocument }
  /** The device is a queue-mode device and asleep: the job waits for it (status `waiting`). */
  | { action: 'parked'; job: JobDocument };

/**
 * Errors on which the job can be retried: they may pass (connector restarting, device slow or asleep).
 * `DeviceNotConnected` is among them only when the connector says it (the twin said connected): see above.
 */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set([
  'ConnectorUnavailable',
  'DeviceTimeout',
  'DeviceNotConnected',
]);

/** Thrown so that Service Bus redelivers the message; carries the job's last error. */
export class TransientJobError extends Error {
  constructor(
    readonly jobId: string,
    readonly jobError: JobError,
  ) {
    super(`Job ${jobId}: ${jobError.code}: ${jobError.message} (will be redelivered)`);
    this.name = 'TransientJobError';
  }
}

/** Thrown for a message that is not a job message: the trigger dead-letters it with this reason and description. */
export class JobMessageDeadLetter extends Error {
  readonly deadLetterReason: string;
  readonly deadLetterErrorDescription: string;

  constructor(reason: string, description: string) {
    super(`Job message dead-lettered: ${reason}: ${description}`);
    this.name = 'JobMessageDeadLetter';
    this.deadLetterReason = reason;
    this.deadLetterErrorDescription = description;
  }
}

/** Wraps an error that fails the job at once, whatever its code. */
class NeverSucceeds extends Error {
  constructor(readonly error: TwinError) {
    super(error.message);
  }
}

/** Wraps the failure of a write or execute whose request may have reached the device (see `outcomeUnknown`). */
class OutcomeUnknown extends Error {
  constructor(readonly error: unknown) {
    super(error instanceof Error ? error.message : String(error));
  }
}

/** Dead-letter reasons (stable; they name what was wrong with the message). */
export const DEAD_LETTER_REASONS = {
  /** The body is not a valid job message; the description names the field. */
  invalidMessage: 'InvalidJobMessage',
  /** The jobId belongs to a job with another request. */
  jobConflict: 'JobConflict',
} as const;

export async function runDeviceJob(
  deps: DeviceJobDependencies,
  body: unknown,
  delivery: JobDelivery,
): Promise<JobRunOutcome> {
  const message = await parseOrDeadLetter(deps, body);
  const job = await findOrCreateJob(deps, message);
  if (FINAL_JOB_STATUSES.has(job.status)) return { action: 'skipped', job };

  const startTime = deps.now();
  if (job.status === 'waiting' && expiredJob(job, startTime)) {
    // Its wake came too late: the job's time-to-live is over.
    const expired = await deps.jobs.update(job.deviceId, job.id, (current) => expiredJob(current, startTime));
    if (!expired) throw new Error(`Job ${job.id} disappeared while expiring`);
    await publishJobEnded(deps, expired, startTime);
    return { action: expired.endTime === startTime ? 'ran' : 'skipped', job: expired };
  }
  const running = await deps.jobs.update(job.deviceId, job.id, (current) =>
    startable(current, startTime)
      ? {
          ...withoutWait(current),
          status: 'running',
          // A delivery proves the message exists.
          sentTime: current.sentTime ?? startTime,
          startedTime: current.startedTime ?? startTime,
          attempts: current.attempts + 1,
          ttl: JOBS_TTL_SECONDS,
          // Still `running` at a delivery: the previous one stopped mid-run (host gone, lock lost), outcome unknown.
          ...(current.status === 'running' &&
            current.type !== 'readDeviceProperty' && {
              lastError: {
                code: 'MayHaveRun' as const,
                message: `Attempt ${current.attempts} stopped before its outcome was recorded; it may have reached the device`,
              },
            }),
        }
      : undefined,
  );
  if (!running) throw new Error(`Job ${job.id} disappeared while starting`);
  if (running.status !== 'running') return { action: 'skipped', job: running };

  let result: JobResult | undefined;
  try {
    result = await runOnDevice(deps, running);
  } catch (thrown) {
    if (isTwinError(thrown, 'DeviceAsleep')) return { action: 'parked', job: await park(deps, running, thrown) };
    const unknown = thrown instanceof OutcomeUnknown;
    const error = thrown instanceof NeverSucceeds || thrown instanceof OutcomeUnknown ? thrown.error : thrown;
    let jobError = toJobError(error);
    const transient = !(thrown instanceof NeverSucceeds) && (!isTwinError(error) || TRANSIENT_CODES.has(jobError.code));
    if (unknown || running.lastError?.code === 'MayHaveRun') jobError = mayHaveRun(running, jobError, unknown);
    if (!transient || delivery.deliveryCount >= deps.retry.maxDeliveryCount) {
      return { action: 'ran', job: await finish(deps, running, { error: jobError }) };
    }
    await deps.jobs.update(running.deviceId, running.id, (current) =>
      current.status === 'running' ? { ...current, status: 'queued', lastError: jobError } : undefined,
    );
    await deps.sleep(retryDelayMs(deps.retry, delivery.deliveryCount));
    throw new TransientJobError(running.id, jobError);
  }
  return { action: 'ran', job: await finish(deps, running, { result }) };
}

/**
 * Parks a job whose device is asleep (status `waiting`), then reads the twin: a device that woke meanwhile (its
 * `awakeUntil` ahead) may have had its waiting jobs resumed before this one was parked, so this one is resumed now
 * (the same wake message id as the connector's: the queue keeps one copy).
 */
async function park(deps: DeviceJobDependencies, job: JobDocument, asleep: TwinError): Promise<JobDocument> {
  const now = deps.now();
  const parked = await deps.jobs.update(job.deviceId, job.id, (current) =>
    waitingJob(current, {
      now,
      maxWaitSeconds: deps.maxWaitForDeviceSeconds,
      asleep: { code: 'DeviceAsleep', message: `${asleep.message}; the job waits for the device's next Update` },
    }),
  );
  if (!parked) throw new Error(`Job ${job.id} disappeared while parking`);
  const awakeUntil = (await deps.twins.get(job.deviceId))?.connection.awakeUntil;
  if (awakeUntil !== undefined && awakeUntil > deps.now()) {
    const resumed = await resumeWaitingJobs(deps.jobs, deps.queue, job.deviceId);
    if (resumed.failure) {
      deps.warn(`Job ${resumed.failure.jobId} not resumed (${resumed.failure.message}); it waits for the next wake`);
    }
  }
  return parked;
}

/** Whether a delivery at `now` may start the job: queued, running (a delivery stopped mid-run), or waiting in time. */
function startable(job: JobDocument, now: string): boolean {
  if (job.status === 'waiting') return expiredJob(job, now) === undefined;
  return job.status === 'queued' || job.status === 'running';
}

function withoutWait(job: JobDocument): JobDocument {
  const { waitingSince: _waitingSince, ...rest } = job;
  return rest;
}

/** Back-off before the throw after a transient failure on delivery `deliveryCount` (1-based), ms. */
export function retryDelayMs(policy: RetryPolicy, deliveryCount: number): number {
  const exponent = Math.min(Math.max(deliveryCount - 1, 0), 30);
  return Math.min(policy.firstDelayMs * 2 ** exponent, policy.maxDelayMs);
}

/** The device round trip; resolves with a read's result, throws the connector's TwinError. */
async function runOnDevice(deps: DeviceJobDependencies, job: JobDocument): Promise<JobResult | undefined> {
  const twin = await deps.twins.get(job.deviceId);
  if (!twin)
    throw new NeverSucceeds(new TwinError('DeviceNotFound', `Device ${job.deviceId} is no longer provisioned`));
  const { state, connectorUrl } = twin.connection;
  if (state !== 'connected' || connectorUrl === undefined) {
    throw new NeverSucceeds(
      new TwinError('DeviceNotConnected', `Device ${job.deviceId} is not connected (connection state: ${state})`),
    );
  }
  const request = jobRequestOf(job);
  const options: DeviceCallOptions = { timeoutMs: deps.deviceTimeoutMs };
  switch (request.type) {
    case 'readDeviceProperty': {
      const reading = await deps.connector.read(connectorUrl, job.deviceId, request.property, options);
      const { value } = reading;
      // The connector's receive time orders this value against its notifies (same clock).
      const time = reading.time ?? deps.now();
      // The twin keeps a newer notify: applyReadings only writes a strictly newer reading.
      const readings = [{ name: request.property, value, time, source: 'deepRead' as const }];
      const written = await deps.twins.applyReadings(job.deviceId, readings);
      await publishBestEffort(deps.events, propertyFreshEvents(job.deviceId, written.refreshed, readings), deps.warn);
      return { value, lastUpdatedTime: time };
    }
    case 'writeDeviceProperty': {
      // An earlier attempt may have written already: a device that holds the value is not written again.
      if (job.attempts > 1 && findProperty(request.property)?.readable) {
        const held = await deps.connector.read(connectorUrl, job.deviceId, request.property, options);
        if (held.value === request.value) return undefined;
      }
      // The twin is left alone: the device's next notify brings the new value.
      await applyOnDevice(() =>
        deps.connector.write(connectorUrl, job.deviceId, request.property, request.value, options),
      );
      return undefined;
    }
    case 'executeDeviceOperation':
      await applyOnDevice(() => deps.connector.execute(connectorUrl, job.deviceId, request.operation, options));
      return undefined;
  }
}

/** Runs a write or execute on the device; a failure whose request may still have been applied is `OutcomeUnknown`. */
async function applyOnDevice(call: () => Promise<void>): Promise<void> {
  try {
    await call();
  } catch (error) {
    throw outcomeUnknown(error) ? new OutcomeUnknown(error) : error;
  }
}

/**
 * Whether a failed write or execute may have reached the device: no answer came (DeviceTimeout: the device may
 * have applied it and its acknowledgement been lost), or the connector call broke after the connection was made
 * (ConnectorUnavailable without `requestSent: false`), or something unexpected. An answer (DeviceRejected,
 * DeviceNotConnected from the connector, ...) or a connection never made says it was not applied.
 */
function outcomeUnknown(error: unknown): boolean {
  if (!isTwinError(error)) return true;
  if (error.code === 'DeviceTimeout') return true;
  return error.code === 'ConnectorUnavailable' && error.extensions.requestSent !== false;
}

/** The job error of an attempt after which the device may have applied the job; `cause` keeps the failure's code. */
function mayHaveRun(job: JobDocument, failure: JobError, thisAttempt: boolean): JobError {
  const which = thisAttempt ? 'this attempt' : 'an earlier attempt';
  return {
    code: 'MayHaveRun',
    message:
      `Attempt ${job.attempts}: ${failure.code}: ${failure.message}. The ` +
      `${job.type === 'executeDeviceOperation' ? 'execute' : 'write'} of ${which} may have reached the device ` +
      'without an answer: the device may have applied it',
    cause: failure.code,
  };
}

async function finish(
  deps: DeviceJobDependencies,
  job: JobDocument,
  outcome: { result?: JobResult; error?: JobError },
): Promise<JobDocument> {
  const endTime = deps.now();
  const finished = await deps.jobs.update(job.deviceId, job.id, (current) => {
    if (FINAL_JOB_STATUSES.has(current.status)) return undefined;
    const { lastError: _lastError, ...rest } = current;
    return outcome.error
      ? { ...rest, status: 'failed', endTime, error: outcome.error, ttl: JOBS_TTL_SECONDS }
      : {
          ...rest,
          status: 'completed',
          endTime,
          ttl: JOBS_TTL_SECONDS,
          ...(outcome.result && { result: outcome.result }),
        };
  });
  if (!finished) throw new Error(`Job ${job.id} disappeared while finishing`);
  await publishJobEnded(deps, finished, endTime);
  return finished;
}

/** Publishes jobEnded when `job` was ended by the write that stamped `endTime` (not by an earlier one). */
async function publishJobEnded(deps: DeviceJobDependencies, job: JobDocument, endTime: string): Promise<void> {
  if (job.endTime !== endTime || !FINAL_JOB_STATUSES.has(job.status)) return;
  const status = job.status as JobEndStatus;
  await publishBestEffort(
    deps.events,
    [jobEndedEvent({ deviceId: job.deviceId, jobId: job.id, status }, endTime)],
    deps.warn,
  );
}

async function findOrCreateJob(deps: DeviceJobDependencies, message: JobMessage): Promise<JobDocument> {
  const existing = await deps.jobs.read(message.deviceId, message.jobId);
  const now = deps.now();
  const job =
    existing ??
    // Put on the queue by automation: the job gets its record here (its message is the one being delivered).
    (
      await deps.jobs.create({
        ...newJob(message.jobId, jobRequestOf(message), 'queue', now, JOBS_TTL_SECONDS, message.ttlSeconds),
        sentTime: now,
      })
    ).job;
  if (!sameJobRequest(jobRequestOf(job), jobRequestOf(message))) {
    throw new JobMessageDeadLetter(
      DEAD_LETTER_REASONS.jobConflict,
      `Job ${message.jobId} exists with another request (${job.type} ${job.property ?? job.operation}); ` +
        `the message asks ${message.type} ${'property' in message ? message.property : message.operation}`,
    );
  }
  return job;
}

/**
 * Parses the message or dead-letters it. A message that still names a job (a valid jobId and deviceId) whose
 * record is not final gets that job failed with the validation error first, so nobody waits for it.
 */
async function parseOrDeadLetter(deps: DeviceJobDependencies, body: unknown): Promise<JobMessage> {
  try {
    return parseJobMessage(body);
  } catch (error) {
    if (!isTwinError(error)) throw error;
    const field = typeof error.extensions.field === 'string' ? error.extensions.field : '';
    const description = `${field ? `${field}: ` : ''}${error.message}`;
    await failNamedJob(deps, body, { code: error.code, message: description });
    throw new JobMessageDeadLetter(DEAD_LETTER_REASONS.invalidMessage, description);
  }
}

async function failNamedJob(deps: DeviceJobDependencies, body: unknown, jobError: JobError): Promise<void> {
  let json = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      json = JSON.parse(body.toString());
    } catch {
      return;
    }
  }
  const { jobId, deviceId } = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  if (typeof jobId !== 'string' || typeof deviceId !== 'string') return;
  if (!JOB_ID_PATTERN.test(jobId) || !DEVICE_ID_PATTERN.test(deviceId)) return;
  const endTime = deps.now();
  const failed = await deps.jobs.update(deviceId, jobId, (current) =>
    FINAL_JOB_STATUSES.has(current.status)
      ? undefined
      : { ...current, status: 'failed', endTime, error: jobError, ttl: JOBS_TTL_SECONDS },
  );
  if (failed) await publishJobEnded(deps, failed, endTime);
}

function toJobError(error: unknown): JobError {
  if (isTwinError(error)) return { code: error.code, message: error.message };
  return { code: 'Internal', message: error instanceof Error ? error.message : String(error) };
}
