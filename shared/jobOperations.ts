/**
 * The job operations behind the HTTP API (`POST /api/jobs`, `GET /api/jobs/{jobId}`,
 * `GET /api/devices/{deviceId}/jobs`, `DELETE /api/jobs/{jobId}`). Handlers parse and map; the rules live here.
 */
import { JOBS_TTL_SECONDS } from './constants';
import { toContinuationError, validateContinuationToken } from './continuationToken';
import { validateDeviceId } from './deviceId';
import { TwinError } from './errors';
import {
  CANCELLABLE_JOB_STATUSES,
  JobDocument,
  jobRequestOf,
  newJob,
  parseJobRequest,
  sameJobRequest,
  toJobMessage,
  validateJobId,
} from './job';
import { JobQueue } from './jobQueue';
import { JobPage, JobStore } from './jobStore';
import { TwinStore } from './twinStore';

export const DEFAULT_JOB_PAGE_SIZE = 50;
export const MAX_JOB_PAGE_SIZE = 100;

export interface SubmitJobDependencies {
  jobs: JobStore;
  twins: TwinStore;
  queue: JobQueue;
  now: () => string;
  /** A fresh, globally unique job id (for requests without a client `jobId`). */
  newJobId: () => string;
}

/**
 * Validates the request against the catalog and the device's provisioning, records the job (`queued`), sends its
 * message and stamps `sentTime` once the queue took it. With a client `jobId`, submitting is idempotent: the same
 * request returns the same job (`created` false; a job still queued has its message sent again, which the queue's
 * duplicate detection absorbs, so a retry after a failed send works), a different request under that id is
 * `JobConflict`. A job whose send failed stays `queued` without `sentTime` until a resubmission or the unsent-job
 * sweep (shared/resendUnsentJobs.ts) sends it.
 */
export async function submitJob(
  deps: SubmitJobDependencies,
  body: unknown,
): Promise<{ job: JobDocument; created: boolean }> {
  const { request, jobId: clientJobId, ttlSeconds } = parseJobRequest(body);
  if (!(await deps.twins.get(request.deviceId))) {
    throw new TwinError('DeviceNotFound', `No device ${request.deviceId} is provisioned`, { field: 'deviceId' });
  }
  const jobId = clientJobId ?? deps.newJobId();
  if (clientJobId !== undefined) {
    // Job ids are unique across devices (they are queue-wide message ids): look in every partition.
    const existing = await deps.jobs.get(clientJobId);
    if (existing) return resubmit(deps, existing, request);
  }
  const { job, created } = await deps.jobs.create(
    newJob(jobId, request, 'api', deps.now(), JOBS_TTL_SECONDS, ttlSeconds),
  );
  if (!created) return resubmit(deps, job, request);
  await send(deps.queue, job);
  return { job: await recordSent(deps.jobs, job, deps.now()), created: true };
}

async function resubmit(
  deps: SubmitJobDependencies,
  existing: JobDocument,
  request: ReturnType<typeof parseJobRequest>['request'],
): Promise<{ job: JobDocument; created: boolean }> {
  if (!sameJobRequest(jobRequestOf(existing), request)) {
    throw new TwinError('JobConflict', `Job ${existing.id} exists with another request (${describeJob(existing)})`, {
      field: 'jobId',
      jobId: existing.id,
    });
  }
  if (existing.status !== 'queued') return { job: existing, created: false };
  await send(deps.queue, existing);
  return { job: await recordSent(deps.jobs, existing, deps.now()), created: false };
}

/**
 * Stamps `sentTime` on a job whose message the queue took (once: a stamped or delivered job keeps its time).
 * Resolves to the stored job; when the stamp cannot be written, to `job` as it was: its message is sent, and the
 * sweep's re-send of a job left unstamped is dropped by the queue's duplicate detection.
 */
export async function recordSent(jobs: JobStore, job: JobDocument, now: string): Promise<JobDocument> {
  if (job.sentTime !== undefined) return job;
  try {
    const stamped = await jobs.update(job.deviceId, job.id, (current) =>
      current.sentTime === undefined ? { ...current, sentTime: now } : undefined,
    );
    return stamped ?? job;
  } catch {
    return job;
  }
}

async function send(queue: JobQueue, job: JobDocument): Promise<void> {
  try {
    await queue.send(toJobMessage(job));
  } catch (error) {
    throw new TwinError(
      'JobQueueUnavailable',
      `Job ${job.id} is recorded but its message was not sent (${(error as Error).message}); ` +
        'submit the same request with this jobId again to send it',
      { jobId: job.id },
    );
  }
}

export async function getJob(jobs: JobStore, jobId: string): Promise<JobDocument> {
  validateJobId(jobId);
  const job = await jobs.get(jobId);
  if (!job) throw jobNotFound(jobId);
  return job;
}

/** One page of a device's jobs, newest first. `pageSize` 1-100 (default 50); `continuation` from the previous page. */
export async function listDeviceJobs(
  jobs: JobStore,
  deviceId: string,
  params: URLSearchParams,
  continuation?: string,
): Promise<JobPage> {
  validateDeviceId(deviceId);
  for (const key of params.keys()) {
    if (key !== 'pageSize' && key !== 'continuation') {
      throw new TwinError('InvalidQuery', `Unknown query parameter ${key} (known: pageSize, continuation)`, {
        field: key,
      });
    }
  }
  const rawSize = params.get('pageSize');
  const pageSize = rawSize === null ? DEFAULT_JOB_PAGE_SIZE : Number(rawSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_JOB_PAGE_SIZE) {
    throw new TwinError('InvalidQuery', `pageSize must be an integer from 1 to ${MAX_JOB_PAGE_SIZE}`, {
      field: 'pageSize',
    });
  }
  // An empty token is no token (the first page), as the store treats it.
  const token = continuation || params.get('continuation') || undefined;
  if (token !== undefined) validateContinuationToken(token);
  try {
    return await jobs.listByDevice(deviceId, pageSize, token);
  } catch (error) {
    throw toContinuationError(error, token);
  }
}

/**
 * Cancels a queued job, or one waiting for its sleeping device: the job function settles its message without running
 * it. Cancelling a cancelled job changes nothing; a job already running or finished is `JobNotCancellable`.
 * `onCancelled` runs once the job is cancelled by this call (for its jobEnded event).
 */
export async function cancelJob(
  jobs: JobStore,
  jobId: string,
  now: string,
  onCancelled: (job: JobDocument) => Promise<void> = async () => undefined,
): Promise<JobDocument> {
  const job = await getJob(jobs, jobId);
  const updated = await jobs.update(job.deviceId, job.id, (current) =>
    CANCELLABLE_JOB_STATUSES.has(current.status) ? { ...current, status: 'cancelled', endTime: now } : undefined,
  );
  if (!updated) throw jobNotFound(jobId);
  if (updated.status !== 'cancelled') {
    throw new TwinError(
      'JobNotCancellable',
      `Job ${jobId} is ${updated.status}; only a queued or waiting job can be cancelled`,
      {
        jobId,
        status: updated.status,
      },
    );
  }
  if (updated.endTime === now) await onCancelled(updated);
  return updated;
}

function jobNotFound(jobId: string): TwinError {
  return new TwinError('JobNotFound', `No job ${jobId} (finished jobs are kept ${JOBS_TTL_SECONDS / 86400} days)`, {
    jobId,
  });
}

function describeJob(job: JobDocument): string {
  const target = job.operation ?? job.property;
  const value = job.value === undefined ? '' : ` = ${JSON.stringify(job.value)}`;
  return `${job.type} ${target}${value} on ${job.deviceId}`;
}
