/**
 * The unsent-job sweep against the local Cosmos server, with a recording queue (duplicate detection by messageId,
 * as the device-jobs queue has it) and an injected clock (each run's `now`).
 */
import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { JobDocument, JobMessage, newJob } from '../../shared/job';
import { JobQueue } from '../../shared/jobQueue';
import { resendUnsentJobs } from '../../shared/resendUnsentJobs';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

/** A queue that keeps the first message per messageId (= jobId), counts every send, and can refuse. */
class DeduplicatingQueue implements JobQueue {
  readonly messages = new Map<string, JobMessage>();
  sends = 0;
  refuse = false;
  async send(message: JobMessage): Promise<void> {
    if (this.refuse) throw new Error('amqp:connection:forced');
    this.sends++;
    if (!this.messages.has(message.jobId)) this.messages.set(message.jobId, message);
  }
}

const T0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const OPTIONS = { resendAfterSeconds: 120, maxAgeSeconds: 1800 };

describe('resendUnsentJobs (local Cosmos, injected clock)', () => {
  let cosmos: TestCosmos;
  let jobs: CosmosJobStore;
  let queue: DeduplicatingQueue;
  let database = 0;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
  });
  afterAll(() => cosmos.close());
  beforeEach(async () => {
    // A database per test: the sweep's query spans every device.
    jobs = new CosmosJobStore(await openJobsContainer(cosmos.client, `unsent-sweep-${++database}`));
    queue = new DeduplicatingQueue();
  });

  /** A job recorded `queued` at `createdSeconds`, whose message was never sent. */
  async function unsent(jobId: string, createdSeconds: number, extra: Partial<JobDocument> = {}): Promise<void> {
    const request = {
      type: 'writeDeviceProperty' as const,
      deviceId: `dev-${jobId}`,
      property: 'timezone',
      value: 'UTC',
    };
    await jobs.create({ ...newJob(jobId, request, 'api', at(createdSeconds), 3600), ...extra });
  }

  it('re-sends a job unsent past the bound with its jobId, stamps sentTime, and leaves younger jobs', async () => {
    await unsent('old', 0);
    await unsent('young', 100);
    const summary = await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(150) });
    expect(summary).toMatchObject({ found: 1, resent: 1, failed: 0, sendFailures: [] });
    expect(queue.messages.get('old')).toEqual({
      type: 'writeDeviceProperty',
      deviceId: 'dev-old',
      property: 'timezone',
      value: 'UTC',
      jobId: 'old',
    });
    expect(await jobs.read('dev-old', 'old')).toMatchObject({ status: 'queued', sentTime: at(150) });
    expect(await jobs.read('dev-young', 'young')).not.toHaveProperty('sentTime');

    // A later run sends the young one only; the old one is sent already.
    const later = await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(230) });
    expect(later).toMatchObject({ found: 1, resent: 1 });
    expect(queue.sends).toBe(2);
    expect(await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(300) })).toMatchObject({ found: 0 });
  });

  it('leaves jobs sent, delivered or ended alone', async () => {
    await unsent('sent', 0, { sentTime: at(1) });
    await unsent('running', 0, { status: 'running' });
    await unsent('cancelled', 0, { status: 'cancelled', endTime: at(5) });
    await unsent('completed', 0, { status: 'completed', endTime: at(5) });
    const summary = await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(5000) });
    expect(summary).toMatchObject({ found: 0, resent: 0, failed: 0 });
    expect(queue.sends).toBe(0);
  });

  it('fails a job unsent past the max age with JobQueueUnavailable and a jobEnded event', async () => {
    await unsent('ancient', 0);
    const summary = await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(1800) });
    expect(summary).toMatchObject({ found: 1, resent: 0, failed: 1 });
    expect(summary.events).toEqual([
      expect.objectContaining({ kind: 'jobEnded', deviceId: 'dev-ancient', jobId: 'ancient', status: 'failed' }),
    ]);
    expect(await jobs.read('dev-ancient', 'ancient')).toMatchObject({
      status: 'failed',
      endTime: at(1800),
      error: { code: 'JobQueueUnavailable', message: expect.stringMatching(/not sent within 1800 s/) },
    });
    expect(queue.sends).toBe(0);
  });

  it('records a failed re-send on the job and sends it at the next run', async () => {
    await unsent('refused', 0);
    queue.refuse = true;
    const refused = await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(200) });
    expect(refused).toMatchObject({ found: 1, resent: 0, sendFailures: [{ jobId: 'refused' }] });
    const waiting = await jobs.read('dev-refused', 'refused');
    expect(waiting).toMatchObject({ status: 'queued', lastError: { code: 'JobQueueUnavailable' } });
    expect(waiting).not.toHaveProperty('sentTime');

    queue.refuse = false;
    expect(await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(260) })).toMatchObject({ resent: 1 });
    expect(await jobs.read('dev-refused', 'refused')).toMatchObject({ status: 'queued', sentTime: at(260) });
  });

  it('two runs at once send each job as one message and end each expired job once', async () => {
    for (let i = 0; i < 6; i++) await unsent(`r${i}`, 0);
    for (let i = 0; i < 4; i++) await unsent(`x${i}`, -2000);
    const [a, b] = await Promise.all([
      resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(600) }),
      resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(600.001) }),
    ]);
    expect([...queue.messages.keys()].sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
    expect(a.failed + b.failed).toBe(4);
    expect([...a.events, ...b.events].map((e) => e.jobId).sort()).toEqual(['x0', 'x1', 'x2', 'x3']);
    for (let i = 0; i < 6; i++) {
      expect((await jobs.read(`dev-r${i}`, `r${i}`))?.sentTime).toEqual(expect.any(String));
    }
    expect(await resendUnsentJobs(jobs, queue, { ...OPTIONS, now: at(700) })).toMatchObject({ found: 0 });
  });
});
