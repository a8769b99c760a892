import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { ErrorCode, isTwinError } from '../../shared/errors';
import { JobMessage } from '../../shared/job';
import { JobQueue } from '../../shared/jobQueue';
import { SubmitJobDependencies, cancelJob, getJob, listDeviceJobs, submitJob } from '../../shared/jobOperations';
import { newTwin } from '../../shared/twin';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

/** A queue that records what was sent, and can be told to refuse. */
class RecordingQueue implements JobQueue {
  readonly sent: JobMessage[] = [];
  refuse = false;
  async send(message: JobMessage): Promise<void> {
    if (this.refuse) throw new Error('amqp:connection:forced');
    this.sent.push(message);
  }
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: ErrorCode; field: unknown }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isTwinError(error)) throw new Error(`expected a TwinError, got ${String(error)}`);
  return { code: error.code, field: error.extensions.field };
}

describe('job operations (local Cosmos, recording queue)', () => {
  let cosmos: TestCosmos;
  let deps: SubmitJobDependencies;
  let queue: RecordingQueue;
  let counter = 0;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    queue = new RecordingQueue();
    deps = {
      jobs: new CosmosJobStore(await openJobsContainer(cosmos.client, 'job-ops-test')),
      twins: new CosmosTwinStore(await openTwinsContainer(cosmos.client, 'job-ops-test'), 93),
      queue,
      now: () => new Date(Date.UTC(2026, 0, 1) + counter * 1000).toISOString(),
      newJobId: () => `gen-${++counter}`,
    };
    await deps.twins.create(newTwin('dev-1', {}, deps.now()));
    await deps.twins.create(newTwin('dev-2', {}, deps.now()));
    await deps.twins.create(newTwin('dev-3', {}, deps.now()));
  });
  afterAll(() => cosmos.close());

  it('records a queued job and sends its message with the jobId', async () => {
    const { job, created } = await submitJob(deps, {
      type: 'writeDeviceProperty',
      deviceId: 'dev-1',
      property: 'timezone',
      value: 'Europe/Paris',
    });
    expect(created).toBe(true);
    expect(job).toMatchObject({ status: 'queued', deviceId: 'dev-1', origin: 'api', attempts: 0 });
    expect(job.sentTime).toEqual(expect.any(String));
    expect(queue.sent.at(-1)).toEqual({
      type: 'writeDeviceProperty',
      deviceId: 'dev-1',
      property: 'timezone',
      value: 'Europe/Paris',
      jobId: job.id,
    });
    expect(await getJob(deps.jobs, job.id)).toMatchObject({ id: job.id, status: 'queued' });
  });

  it('refuses an unprovisioned device and invalid bodies before recording anything', async () => {
    const sentBefore = queue.sent.length;
    expect(
      await codeOf(submitJob(deps, { type: 'readDeviceProperty', deviceId: 'nobody', property: 'batteryLevel' })),
    ).toEqual({ code: 'DeviceNotFound', field: 'deviceId' });
    expect(await codeOf(submitJob(deps, { type: 'readDeviceProperty', deviceId: 'dev-1', property: 'x' }))).toEqual({
      code: 'InvalidRequest',
      field: 'property',
    });
    expect(queue.sent.length).toBe(sentBefore);
  });

  it('is idempotent under a client jobId: same request -> same job, another request or device -> 409', async () => {
    const body = { type: 'readDeviceProperty', deviceId: 'dev-1', property: 'batteryLevel', jobId: 'client-1' };
    const first = await submitJob(deps, body);
    const second = await submitJob(deps, body);
    expect(first.created).toBe(true);
    expect(second).toMatchObject({ created: false, job: { id: 'client-1', createdTime: first.job.createdTime } });
    expect(await codeOf(submitJob(deps, { ...body, property: 'memoryFree' }))).toEqual({
      code: 'JobConflict',
      field: 'jobId',
    });
    expect(await codeOf(submitJob(deps, { ...body, deviceId: 'dev-2' }))).toEqual({
      code: 'JobConflict',
      field: 'jobId',
    });
  });

  it('answers a failed send with JobQueueUnavailable and sends again when the same request is resubmitted', async () => {
    queue.refuse = true;
    const body = { type: 'executeDeviceOperation', deviceId: 'dev-2', operation: 'reboot', jobId: 'client-send' };
    expect(await codeOf(submitJob(deps, body))).toMatchObject({ code: 'JobQueueUnavailable' });
    // Recorded, but not known to be sent: the unsent-job sweep would find it.
    expect(await getJob(deps.jobs, 'client-send')).not.toHaveProperty('sentTime');
    queue.refuse = false;
    const retried = await submitJob(deps, body);
    expect(retried.created).toBe(false);
    expect(retried.job.sentTime).toEqual(expect.any(String));
    expect(queue.sent.filter((m) => m.jobId === 'client-send')).toHaveLength(1);
  });

  it('cancels a queued job once; a running one is not cancellable; unknown ids are 404', async () => {
    const { job } = await submitJob(deps, { type: 'readDeviceProperty', deviceId: 'dev-2', property: 'timezone' });
    expect((await cancelJob(deps.jobs, job.id, deps.now())).status).toBe('cancelled');
    expect((await cancelJob(deps.jobs, job.id, deps.now())).status).toBe('cancelled');
    const other = await submitJob(deps, { type: 'readDeviceProperty', deviceId: 'dev-2', property: 'timezone' });
    await deps.jobs.update('dev-2', other.job.id, (j) => ({ ...j, status: 'running' }));
    expect(await codeOf(cancelJob(deps.jobs, other.job.id, deps.now()))).toMatchObject({ code: 'JobNotCancellable' });
    expect(await codeOf(cancelJob(deps.jobs, 'no-such-job', deps.now()))).toMatchObject({ code: 'JobNotFound' });
    expect(await codeOf(getJob(deps.jobs, 'bad id'))).toEqual({ code: 'InvalidRequest', field: 'jobId' });
  });

  it('lists a device newest first with pageSize and continuation; bad parameters name the field', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { job } = await submitJob(deps, {
        type: 'readDeviceProperty',
        deviceId: 'dev-3',
        property: 'batteryLevel',
      });
      ids.push(job.id);
    }
    const first = await listDeviceJobs(deps.jobs, 'dev-3', new URLSearchParams('pageSize=2'));
    expect(first.jobs.map((j) => j.id)).toEqual([ids[4], ids[3]]);
    const second = await listDeviceJobs(deps.jobs, 'dev-3', new URLSearchParams('pageSize=2'), first.continuation);
    expect(second.jobs.map((j) => j.id)).toEqual([ids[2], ids[1]]);
    expect(await codeOf(listDeviceJobs(deps.jobs, 'dev-3', new URLSearchParams('pageSize=0')))).toEqual({
      code: 'InvalidQuery',
      field: 'pageSize',
    });
    expect(await codeOf(listDeviceJobs(deps.jobs, 'dev-3', new URLSearchParams('status=queued')))).toEqual({
      code: 'InvalidQuery',
      field: 'status',
    });
  });
});
