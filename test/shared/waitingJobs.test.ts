import { PropertyValue } from '../../shared/catalog';
import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { TwinError, isTwinError } from '../../shared/errors';
import { JobMessage, MAX_JOB_TTL_SECONDS, newJob, parseJobRequest, toJobView } from '../../shared/job';
import { cancelJob } from '../../shared/jobOperations';
import { DeviceConnector, DeviceJobDependencies, runDeviceJob } from '../../shared/runDeviceJob';
import { newTwin } from '../../shared/twin';
import { TwinEvent } from '../../shared/twinEvents';
import { failExpiredWaitingJobs, resumeWaitingJobs, wakeMessageId } from '../../shared/waitingJobs';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

const CONNECTOR_URL = 'http://connector-q.test';

/** A connector for one queue-mode device that is asleep until the test wakes it; records what reached the device. */
class SleepyConnector implements DeviceConnector {
  asleep = true;
  readonly applied: string[] = [];

  private reach(call: string): void {
    if (this.asleep) throw new TwinError('DeviceAsleep', 'scripted: the device is asleep');
    this.applied.push(call);
  }
  async read(_url: string, _deviceId: string, name: string): Promise<{ value: PropertyValue }> {
    this.reach(`read ${name}`);
    return { value: 42 };
  }
  async write(_url: string, _deviceId: string, name: string, value: PropertyValue): Promise<void> {
    this.reach(`write ${name}=${value}`);
  }
  async execute(_url: string, _deviceId: string, name: string): Promise<void> {
    this.reach(`execute ${name}`);
  }
}

describe('jobs for a sleeping queue-mode device (local Cosmos, injected clock)', () => {
  let cosmos: TestCosmos;
  let deps: DeviceJobDependencies;
  let connector: SleepyConnector;
  /** Seconds since 2026-01-01T00:00:00Z; the test moves it. */
  let clock = 0;
  const time = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
  const sent: { message: JobMessage; messageId?: string }[] = [];
  const events: TwinEvent[] = [];
  let deviceCounter = 0;
  /** The value the next write job writes (each job its own). */
  let written = 1_700_000_000;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    deps = {
      jobs: new CosmosJobStore(await openJobsContainer(cosmos.client, 'waiting-jobs-test')),
      twins: new CosmosTwinStore(await openTwinsContainer(cosmos.client, 'waiting-jobs-test'), 93),
      connector: new SleepyConnector(),
      retry: { maxDeliveryCount: 3, firstDelayMs: 1, maxDelayMs: 1 },
      deviceTimeoutMs: 5000,
      now: () => time(clock),
      sleep: async () => undefined,
      events: { publish: async (batch) => void events.push(...batch) },
      warn: () => undefined,
      queue: { send: async (message, options) => void sent.push({ message, messageId: options?.messageId }) },
      maxWaitForDeviceSeconds: 3600,
    };
  });
  afterAll(() => cosmos.close());
  beforeEach(() => {
    connector = new SleepyConnector();
    deps.connector = connector;
    sent.length = 0;
    events.length = 0;
    clock = 100;
  });

  /** A provisioned queue-mode device, connected; `awakeUntil` as the twin says (default: long past). */
  async function sleepingDevice(awakeUntil = time(0)): Promise<string> {
    const deviceId = `q-${++deviceCounter}`;
    await deps.twins.create(newTwin(deviceId, {}, time(0)));
    await deps.twins.update(deviceId, (twin) => ({
      ...twin,
      connection: {
        state: 'connected',
        since: time(0),
        binding: 'UQ',
        queueMode: true,
        awakeUntil,
        connectorId: 'q',
        connectorUrl: CONNECTOR_URL,
      },
    }));
    return deviceId;
  }

  /** Submits a job (at the current clock) and delivers its message once, as the queue would. */
  async function submitAndDeliver(deviceId: string, jobId: string, ttlSeconds?: number) {
    const request = { type: 'writeDeviceProperty' as const, deviceId, property: 'currentTime', value: ++written };
    await deps.jobs.create(newJob(jobId, request, 'api', time(clock), 7 * 86400, ttlSeconds));
    return runDeviceJob(deps, { ...request, jobId }, { deliveryCount: 1 });
  }

  it('parks a job whose device is asleep: waiting, nothing sent, no attempt counted, expiresAt from its TTL', async () => {
    const deviceId = await sleepingDevice();
    const outcome = await submitAndDeliver(deviceId, `${deviceId}-a`, 600);
    expect(outcome.action).toBe('parked');
    expect(outcome.job).toMatchObject({
      status: 'waiting',
      attempts: 0,
      waitingSince: time(100),
      expiresAt: time(700),
      lastError: { code: 'DeviceAsleep' },
    });
    expect(toJobView(outcome.job)).toMatchObject({ status: 'waiting', expiresAt: time(700), waitingSince: time(100) });
    expect(connector.applied).toEqual([]);
    expect(sent).toEqual([]);
    expect(events).toEqual([]);
  });

  it('a job without a TTL waits Jobs__maxWaitForDeviceSeconds from when it first waits', async () => {
    const deviceId = await sleepingDevice();
    const outcome = await submitAndDeliver(deviceId, `${deviceId}-a`);
    expect(outcome.job).toMatchObject({ status: 'waiting', expiresAt: time(100 + 3600) });
  });

  it('at the wake, the waiting jobs go back to the queue in submission order and run, in that order', async () => {
    const deviceId = await sleepingDevice();
    for (const [i, suffix] of ['first', 'second', 'third'].entries()) {
      clock = 100 + i;
      await submitAndDeliver(deviceId, `${deviceId}-${suffix}`, 600);
    }
    clock = 200;
    connector.asleep = false;
    const summary = await resumeWaitingJobs(deps.jobs, deps.queue, deviceId);
    const ids = ['first', 'second', 'third'].map((suffix) => `${deviceId}-${suffix}`);
    expect(summary).toEqual({ resumed: ids });
    expect(sent.map((s) => s.message.jobId)).toEqual(ids);
    // Not the jobId: the first delivery's message may still be remembered by duplicate detection.
    expect(sent.map((s) => s.messageId)).toEqual(
      await Promise.all(ids.map(async (id) => wakeMessageId((await deps.jobs.read(deviceId, id))!))),
    );
    expect(new Set(sent.map((s) => s.messageId)).size).toBe(3);
    for (const { message } of sent) {
      const outcome = await runDeviceJob(deps, message, { deliveryCount: 1 });
      expect(outcome.job).toMatchObject({ status: 'completed', attempts: 1 });
      expect(outcome.job.waitingSince).toBeUndefined();
    }
    const values = sent.map((s) => (s.message as { value: number }).value);
    expect(values).toEqual([...values].sort());
    expect(connector.applied).toEqual(values.map((value) => `write currentTime=${value}`));
  });

  it('a job past its TTL fails DeviceAsleep: by the sweep, with its jobEnded event, and never runs', async () => {
    const deviceId = await sleepingDevice();
    await submitAndDeliver(deviceId, `${deviceId}-short`, 60);
    await submitAndDeliver(deviceId, `${deviceId}-long`, 6000);
    clock = 100 + 59;
    expect((await failExpiredWaitingJobs(deps.jobs, { now: time(clock) })).failed).toBe(0);
    clock = 100 + 60;
    const summary = await failExpiredWaitingJobs(deps.jobs, { now: time(clock) });
    expect(summary).toMatchObject({ failed: 1 });
    expect(summary.events).toEqual([
      expect.objectContaining({ deviceId, jobId: `${deviceId}-short`, status: 'failed' }),
    ]);
    const failed = await deps.jobs.read(deviceId, `${deviceId}-short`);
    expect(failed).toMatchObject({ status: 'failed', endTime: time(160), error: { code: 'DeviceAsleep' } });
    expect(failed?.waitingSince).toBeUndefined();
    expect((await deps.jobs.read(deviceId, `${deviceId}-long`))?.status).toBe('waiting');
    // A second sweep changes nothing.
    expect((await failExpiredWaitingJobs(deps.jobs, { now: time(clock) })).failed).toBe(0);
    connector.asleep = false;
    expect((await resumeWaitingJobs(deps.jobs, deps.queue, deviceId)).resumed).toEqual([`${deviceId}-long`]);
    expect(connector.applied).toEqual([]);
  });

  it('a wake message delivered after the TTL fails the job DeviceAsleep without running it', async () => {
    const deviceId = await sleepingDevice();
    await submitAndDeliver(deviceId, `${deviceId}-late`, 60);
    await resumeWaitingJobs(deps.jobs, deps.queue, deviceId);
    connector.asleep = false;
    clock = 100 + 61;
    const outcome = await runDeviceJob(deps, sent[0].message, { deliveryCount: 1 });
    expect(outcome).toMatchObject({ action: 'ran', job: { status: 'failed', error: { code: 'DeviceAsleep' } } });
    expect(events).toEqual([expect.objectContaining({ jobId: `${deviceId}-late`, status: 'failed' })]);
    expect(connector.applied).toEqual([]);
  });

  it('a device that woke while the job was being parked (twin awake) gets the job resumed by the job function', async () => {
    const deviceId = await sleepingDevice(time(10_000));
    const outcome = await submitAndDeliver(deviceId, `${deviceId}-race`, 600);
    expect(outcome.action).toBe('parked');
    expect(sent).toEqual([
      { message: expect.objectContaining({ jobId: `${deviceId}-race` }), messageId: wakeMessageId(outcome.job) },
    ]);
  });

  it('a waiting job can be cancelled; its wake message then does nothing', async () => {
    const deviceId = await sleepingDevice();
    await submitAndDeliver(deviceId, `${deviceId}-c`, 600);
    const cancelled = await cancelJob(deps.jobs, `${deviceId}-c`, time(clock));
    expect(cancelled.status).toBe('cancelled');
    expect((await resumeWaitingJobs(deps.jobs, deps.queue, deviceId)).resumed).toEqual([]);
  });

  it('wake message ids stay within 128 characters and differ per wait', () => {
    const job = newJob(
      'j'.repeat(128),
      { type: 'executeDeviceOperation', deviceId: 'd', operation: 'reboot' },
      'api',
      time(0),
      1,
    );
    const first = wakeMessageId({ ...job, waitingSince: time(1) });
    expect(first.length).toBeLessThanOrEqual(128);
    expect(wakeMessageId({ ...job, waitingSince: time(2) })).not.toBe(first);
  });

  it('ttlSeconds is validated: a positive whole number up to 7 days, 400 naming the field', () => {
    const base = { type: 'readDeviceProperty', deviceId: 'dev-1', property: 'batteryLevel' };
    expect(parseJobRequest({ ...base, ttlSeconds: 60 }).ttlSeconds).toBe(60);
    for (const bad of [0, -5, 1.5, '60', null, MAX_JOB_TTL_SECONDS + 1]) {
      let error: unknown;
      try {
        parseJobRequest({ ...base, ttlSeconds: bad });
      } catch (thrown) {
        error = thrown;
      }
      expect(isTwinError(error, 'InvalidRequest')).toBe(true);
      expect((error as TwinError).status).toBe(400);
      expect((error as TwinError).extensions.field).toBe('ttlSeconds');
    }
  });
});
