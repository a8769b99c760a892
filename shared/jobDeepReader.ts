/**
 * Deep reads for the max-age read-through, through the jobs machinery: submit a `readDeviceProperty` job (the
 * same path as `POST /api/jobs`: job record, then the `device-jobs` queue) and poll its record until it ends or the
 * wait is over. A job still running then is left to finish: it updates the twin when the device answers.
 */
import { JobDocument, JobRequest } from './job';
import { JobStore } from './jobStore';
import { DeepReadOutcome, DeepReader } from './readThroughDeviceProperty';

/** First and largest pause between two reads of the job record, milliseconds (doubling from one to the other). */
export const FIRST_POLL_MS = 25;
export const MAX_POLL_MS = 250;

export interface JobDeepReaderDependencies {
  /** Submits a job as the jobs API does and returns its record (status `queued`). */
  submit: (request: JobRequest) => Promise<JobDocument>;
  jobs: JobStore;
  /** Monotonic milliseconds (default `performance.now`). */
  elapsedClock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class JobDeepReader implements DeepReader {
  private readonly elapsed: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly dependencies: JobDeepReaderDependencies) {
    this.elapsed = dependencies.elapsedClock ?? (() => performance.now());
    this.sleep = dependencies.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async readProperty(deviceId: string, property: string, waitMs: number): Promise<DeepReadOutcome> {
    const deadline = this.elapsed() + waitMs;
    const submitted = await this.dependencies.submit({ type: 'readDeviceProperty', deviceId, property });
    let job: JobDocument | undefined = submitted;
    let pause = FIRST_POLL_MS;
    for (;;) {
      const outcome = job
        ? outcomeOf(job)
        : { status: 'failed' as const, code: 'JobNotFound', message: 'The job vanished' };
      if (outcome) return outcome;
      const left = deadline - this.elapsed();
      if (left <= 0) return { status: 'timedOut' };
      await this.sleep(Math.min(pause, left));
      pause = Math.min(pause * 2, MAX_POLL_MS);
      job = await this.dependencies.jobs.read(deviceId, submitted.id);
    }
  }
}

/** The outcome of a job that ended; undefined while it is queued or running. */
export function outcomeOf(job: JobDocument): DeepReadOutcome | undefined {
  switch (job.status) {
    case 'completed':
      return job.result
        ? { status: 'completed', value: job.result.value, lastUpdatedTime: job.result.lastUpdatedTime }
        : { status: 'failed', code: 'Internal', message: `Job ${job.id} completed without a value` };
    case 'failed':
      return {
        status: 'failed',
        code: job.error?.code ?? 'Internal',
        message: job.error?.message ?? `Job ${job.id} failed`,
      };
    case 'cancelled':
      return { status: 'failed', code: 'JobCancelled', message: `Job ${job.id} was cancelled` };
    default:
      return undefined;
  }
}
