/**
 * The job store: where job records live (Cosmos `jobs`, partition key `/deviceId`, id = jobId).
 * Contract callers may rely on:
 * - a jobId is unique across devices (it is also the Service Bus messageId, de-duplicated queue-wide);
 * - `get(jobId)` finds a job from its id alone; `read(deviceId, jobId)` is the cheap point read;
 * - `update` never loses a concurrent write (ETag-guarded, retried on a lost race);
 * - "not found" is `undefined`, never an exception.
 */
import { JobDocument } from './job';

export interface JobPage {
  /** Newest first. */
  jobs: JobDocument[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  continuation?: string;
}

export interface JobStore {
  /** Creates the job; when a job with that id exists on the device already, returns it with `created: false`. */
  create(job: JobDocument): Promise<{ job: JobDocument; created: boolean }>;
  /** The job with this id, whichever device it belongs to. */
  get(jobId: string): Promise<JobDocument | undefined>;
  /** Point read of a job of a known device. */
  read(deviceId: string, jobId: string): Promise<JobDocument | undefined>;
  /**
   * Read-modify-write under the record's ETag, retried on a lost race. `mutate` returns the new record, or
   * undefined to change nothing; it must be pure, as it may run more than once. Resolves to the stored record
   * (the current one when `mutate` changed nothing), or undefined when there is no such job.
   */
  update(
    deviceId: string,
    jobId: string,
    mutate: (job: JobDocument) => JobDocument | undefined,
  ): Promise<JobDocument | undefined>;
  /** One page of a device's jobs, newest first. */
  listByDevice(deviceId: string, pageSize: number, continuation?: string): Promise<JobPage>;
  /**
   * One page of the jobs, across devices, that are `queued`, have no `sentTime` (their message is not known to
   * exist) and were created at or before `createdBefore` (ISO). In no particular order. Served from the index:
   * its cost follows the jobs that match, not the container.
   */
  findUnsent(createdBefore: string, pageSize: number, continuation?: string): Promise<JobPage>;
  /**
   * The device's jobs that are `waiting` for it to wake (queue mode), oldest first (createdTime, then id): the order
   * they were submitted in. A single-partition query; at most `limit` (default 100).
   */
  listWaiting(deviceId: string, limit?: number): Promise<JobDocument[]>;
  /**
   * One page of the jobs, across devices, that are `waiting` with an `expiresAt` at or before `expiredBy` (ISO). In no
   * particular order. Served from the index (status, expiresAt).
   */
  findExpiredWaiting(expiredBy: string, pageSize: number, continuation?: string): Promise<JobPage>;
}
