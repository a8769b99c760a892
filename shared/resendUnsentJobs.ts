/**
 * The unsent-job sweep: finds `queued` jobs whose message is not known to exist (no `sentTime`: the send at
 * submission failed, or the process stopped between the record and the send) and re-sends or fails them.
 *
 * - Found from the index (`JobStore.findUnsent`: status, sentTime, createdTime), so the cost follows the unsent jobs,
 *   not the container.
 * - A job older than `resendAfterSeconds` has its message sent again with the same messageId (= jobId): if the first
 *   send did land, the queue's duplicate detection drops the copy. Once the queue takes it, `sentTime` is stamped.
 * - A job older than `maxAgeSeconds` is failed with `JobQueueUnavailable` (and its jobEnded event published).
 * - Safe to run twice at once: every write is a conditional read-modify-write under the record's ETag that changes
 *   only a job still `queued` without `sentTime`; two re-sends are one message to the queue.
 */
import { JOBS_TTL_SECONDS } from './constants';
import { JobDocument, JobError, toJobMessage } from './job';
import { recordSent } from './jobOperations';
import { JobQueue } from './jobQueue';
import { JobStore } from './jobStore';
import { TwinEvent, jobEndedEvent } from './twinEvents';

export interface UnsentJobSweepOptions {
  /** The sweep's moment (ISO-8601 UTC). */
  now: string;
  /** A job unsent this long after its creation is sent again, seconds. */
  resendAfterSeconds: number;
  /** A job unsent this long after its creation is failed instead, seconds (above `resendAfterSeconds`). */
  maxAgeSeconds: number;
  /** Unsent jobs handled per run at most (default 500); the rest wait for the next run. */
  limit?: number;
}

export interface UnsentJobSweepSummary {
  now: string;
  /** Jobs the query returned (at most `limit`). */
  found: number;
  /** Jobs whose message the queue took, and that are now stamped sent. */
  resent: number;
  /** Jobs failed past the max age. */
  failed: number;
  /** Jobs that changed between the query and the write (sent, started or cancelled meanwhile): left alone. */
  unchanged: number;
  /** Jobs whose re-send failed (left for the next run), with the reason. */
  sendFailures: { jobId: string; message: string }[];
  /** One jobEnded event per job this run failed, to publish. */
  events: TwinEvent[];
}

const DEFAULT_LIMIT = 500;
const PAGE_SIZE = 100;

export async function resendUnsentJobs(
  jobs: JobStore,
  queue: JobQueue,
  options: UnsentJobSweepOptions,
): Promise<UnsentJobSweepSummary> {
  const { now } = options;
  const limit = options.limit ?? DEFAULT_LIMIT;
  const summary: UnsentJobSweepSummary = {
    now,
    found: 0,
    resent: 0,
    failed: 0,
    unchanged: 0,
    sendFailures: [],
    events: [],
  };

  // Listed completely before the first write: the writes move jobs out of the result set.
  const unsent: JobDocument[] = [];
  let continuation: string | undefined;
  do {
    const page = await jobs.findUnsent(secondsBefore(now, options.resendAfterSeconds), PAGE_SIZE, continuation);
    unsent.push(...page.jobs);
    continuation = page.continuation;
  } while (continuation !== undefined && unsent.length < limit);
  const due = unsent.slice(0, limit);
  summary.found = due.length;

  const failBefore = secondsBefore(now, options.maxAgeSeconds);
  for (const job of due) {
    if (job.createdTime <= failBefore) {
      await failUnsent(jobs, job, options, summary);
    } else {
      await resend(jobs, queue, job, summary);
    }
  }
  return summary;
}

/** Whether a job is still one the sweep may change: queued, its message not known to exist. */
function stillUnsent(job: JobDocument): boolean {
  return job.status === 'queued' && job.sentTime === undefined;
}

async function resend(
  jobs: JobStore,
  queue: JobQueue,
  job: JobDocument,
  summary: UnsentJobSweepSummary,
): Promise<void> {
  const current = await jobs.read(job.deviceId, job.id);
  if (!current || !stillUnsent(current)) {
    summary.unchanged++;
    return;
  }
  try {
    await queue.send(toJobMessage(current));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    summary.sendFailures.push({ jobId: job.id, message });
    const lastError: JobError = {
      code: 'JobQueueUnavailable',
      message: `The job's message could not be sent (${message}); the next sweep tries again`,
    };
    await jobs.update(job.deviceId, job.id, (latest) => (stillUnsent(latest) ? { ...latest, lastError } : undefined));
    return;
  }
  await recordSent(jobs, current, summary.now);
  summary.resent++;
}

async function failUnsent(
  jobs: JobStore,
  job: JobDocument,
  options: UnsentJobSweepOptions,
  summary: UnsentJobSweepSummary,
): Promise<void> {
  const { now } = options;
  const error: JobError = {
    code: 'JobQueueUnavailable',
    message: `The job's message was not sent within ${options.maxAgeSeconds} s of its creation; the job was not run`,
  };
  const failed = await jobs.update(job.deviceId, job.id, (current) => {
    if (!stillUnsent(current)) return undefined;
    const { lastError: _lastError, ...rest } = current;
    return { ...rest, status: 'failed', endTime: now, error, ttl: JOBS_TTL_SECONDS };
  });
  // Ended by this write (not by an earlier one, nor left alone).
  if (failed?.status === 'failed' && failed.endTime === now && failed.error?.code === 'JobQueueUnavailable') {
    summary.failed++;
    summary.events.push(jobEndedEvent({ deviceId: failed.deviceId, jobId: failed.id, status: 'failed' }, now));
  } else {
    summary.unchanged++;
  }
}

function secondsBefore(iso: string, seconds: number): string {
  return new Date(Date.parse(iso) - seconds * 1000).toISOString();
}
