/**
 * Jobs waiting for a sleeping queue-mode device (LwM2M queue mode, binding `Q`).
 *
 * Design: nothing holds a Service Bus session lock or an HTTP call open while a device sleeps (for minutes or hours).
 * - The connector answers a request for a queue-mode device that sent nothing within its awake window at once with
 *   `DeviceAsleep`; the job function then parks the job (`waitingJob`: status `waiting`, `waitingSince`, `expiresAt`)
 *   and completes its message.
 * - When the device next sends Register or Update, the connector, once the twin says it is awake again, sends the
 *   device's waiting jobs to the queue again (`resumeWaitingJobs`), oldest first, on the device's session: the one
 *   job runner (shared/runDeviceJob.ts) runs them in submission order while the device is awake.
 * - The job function closes the race with a wake that came between the connector's answer and the park: after
 *   parking, it reads the twin, and a device whose `connection.awakeUntil` is ahead has the job resumed at once. Both
 *   resumers send the same message id (`wakeMessageId`), so the queue's duplicate detection keeps one.
 * - The timer sweep (functions/resendUnsentJobs.ts) fails waiting jobs past their `expiresAt` with `DeviceAsleep`
 *   (`failExpiredWaitingJobs`); a delivery that finds a waiting job past it fails it the same way.
 */
import { createHash } from 'node:crypto';
import { JOBS_TTL_SECONDS } from './constants';
import { JobDocument, JobError, toJobMessage } from './job';
import { JobQueue } from './jobQueue';
import { JobStore } from './jobStore';
import { TwinEvent, jobEndedEvent } from './twinEvents';

/** Service Bus message ids hold 128 characters. */
const MAX_MESSAGE_ID_LENGTH = 128;

/**
 * The job parked: `waiting` since `now` (the attempt that found the device asleep does not count: nothing reached
 * the device), with `expiresAt` kept from its time-to-live or set to `now + maxWaitSeconds`. A `MayHaveRun` warning
 * from an earlier attempt is kept; otherwise `lastError` says why it waits. Undefined unless the job is `running`.
 */
export function waitingJob(
  current: JobDocument,
  options: { now: string; maxWaitSeconds: number; asleep: JobError },
): JobDocument | undefined {
  if (current.status !== 'running') return undefined;
  const expiresAt =
    current.expiresAt ?? new Date(Date.parse(options.now) + options.maxWaitSeconds * 1000).toISOString();
  return {
    ...current,
    status: 'waiting',
    waitingSince: options.now,
    expiresAt,
    attempts: Math.max(current.attempts - 1, 0),
    lastError: current.lastError?.code === 'MayHaveRun' ? current.lastError : options.asleep,
    ttl: JOBS_TTL_SECONDS,
  };
}

/** Whether a waiting job's time is up at `now`. */
export function waitExpired(job: JobDocument, now: string): boolean {
  return job.status === 'waiting' && job.expiresAt !== undefined && job.expiresAt <= now;
}

/**
 * The error of a job whose wait for its sleeping device ended: `DeviceAsleep`, or `MayHaveRun` (cause `DeviceAsleep`)
 * when an earlier attempt may have reached the device.
 */
export function deviceAsleepError(job: JobDocument): JobError {
  const message = `Device ${job.deviceId} (queue mode) did not wake before the job expired at ${job.expiresAt}`;
  if (job.lastError?.code === 'MayHaveRun') {
    return { code: 'MayHaveRun', message: `${message}; ${job.lastError.message}`, cause: 'DeviceAsleep' };
  }
  return { code: 'DeviceAsleep', message: `${message}; the job was not run` };
}

/**
 * The message id of a waiting job's wake message: unique per wait (from `waitingSince`), the same for everyone who
 * resumes that wait. At most 128 characters (a long jobId is replaced by its SHA-256).
 */
export function wakeMessageId(job: JobDocument): string {
  const suffix = `:wake-${Date.parse(job.waitingSince ?? job.createdTime).toString(36)}`;
  const base =
    job.id.length + suffix.length <= MAX_MESSAGE_ID_LENGTH
      ? job.id
      : createHash('sha256').update(job.id, 'utf8').digest('base64url');
  return `${base}${suffix}`;
}

export interface ResumeSummary {
  /** Job ids whose wake message the queue took, in the order sent (submission order). */
  resumed: string[];
  /** Set when a send failed; the jobs after it were not sent either (they keep their order for the next wake). */
  failure?: { jobId: string; message: string };
}

/**
 * Sends the device's waiting jobs to the queue again, oldest first, one after another (the device's session keeps
 * that order). Their status stays `waiting` until the delivery starts them. Safe to run twice (same message ids).
 */
export async function resumeWaitingJobs(jobs: JobStore, queue: JobQueue, deviceId: string): Promise<ResumeSummary> {
  const summary: ResumeSummary = { resumed: [] };
  for (const job of await jobs.listWaiting(deviceId)) {
    try {
      await queue.send(toJobMessage(job), { messageId: wakeMessageId(job) });
    } catch (error) {
      summary.failure = { jobId: job.id, message: error instanceof Error ? error.message : String(error) };
      return summary;
    }
    summary.resumed.push(job.id);
  }
  return summary;
}

export interface ExpiredWaitSweepSummary {
  /** Waiting jobs past their `expiresAt` the query returned (at most `limit`). */
  found: number;
  /** Jobs failed with `DeviceAsleep` by this run. */
  failed: number;
  /** Jobs that changed between the query and the write (resumed, cancelled): left alone. */
  unchanged: number;
  /** One jobEnded event per job this run failed, to publish. */
  events: TwinEvent[];
}

const PAGE_SIZE = 100;
const DEFAULT_LIMIT = 500;

/**
 * Fails every job still `waiting` at `now` past its `expiresAt` with `DeviceAsleep`. Each write is a conditional
 * read-modify-write that changes only a job still waiting past its time, so it is safe beside deliveries and a
 * second sweep.
 */
export async function failExpiredWaitingJobs(
  jobs: JobStore,
  options: { now: string; limit?: number },
): Promise<ExpiredWaitSweepSummary> {
  const { now } = options;
  const limit = options.limit ?? DEFAULT_LIMIT;
  const expired: JobDocument[] = [];
  let continuation: string | undefined;
  // Listed completely before the first write: the writes move jobs out of the result set.
  do {
    const page = await jobs.findExpiredWaiting(now, PAGE_SIZE, continuation);
    expired.push(...page.jobs);
    continuation = page.continuation;
  } while (continuation !== undefined && expired.length < limit);
  const summary: ExpiredWaitSweepSummary = { found: 0, failed: 0, unchanged: 0, events: [] };
  for (const job of expired.slice(0, limit)) {
    summary.found++;
    const failed = await jobs.update(job.deviceId, job.id, (current) => expiredJob(current, now));
    if (failed?.status === 'failed' && failed.endTime === now && ended(failed)) {
      summary.failed++;
      summary.events.push(jobEndedEvent({ deviceId: failed.deviceId, jobId: failed.id, status: 'failed' }, now));
    } else {
      summary.unchanged++;
    }
  }
  return summary;
}

function ended(job: JobDocument): boolean {
  return job.error?.code === 'DeviceAsleep' || job.error?.cause === 'DeviceAsleep';
}

/** The job failed with `DeviceAsleep`, if it is still waiting past its `expiresAt` at `now`; else undefined. */
export function expiredJob(current: JobDocument, now: string): JobDocument | undefined {
  if (!waitExpired(current, now)) return undefined;
  const { lastError: _lastError, waitingSince: _waitingSince, ...rest } = current;
  return { ...rest, status: 'failed', endTime: now, error: deviceAsleepError(current), ttl: JOBS_TTL_SECONDS };
}
