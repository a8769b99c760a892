import { PropertyValue } from '../../shared/catalog';
import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { ErrorCode, TwinError } from '../../shared/errors';
import { JobMessage, newJob } from '../../shared/job';
import {
  DeviceConnector,
  DeviceJobDependencies,
  JobMessageDeadLetter,
  TransientJobError,
  retryDelayMs,
  runDeviceJob,
} from '../../shared/runDeviceJob';
import { TwinEvent } from '../../shared/twinEvents';
import { newTwin, observedProperty } from '../../shared/twin';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { uniformObservation } from '../support/observation';

const CONNECTOR_URL = 'http://connector-a.test';

/** A connector that serves values per device and property, records calls, and fails on demand. */
class ScriptedConnector implements DeviceConnector {
  readonly calls: string[] = [];
  readonly values = new Map<string, PropertyValue>();
  readonly failures: (ErrorCode | Error)[] = [];

  private next(call: string): void {
    this.calls.push(call);
    const failure = this.failures.shift();
    if (failure instanceof Error) throw failure;
    if (failure) throw new TwinError(failure, `scripted ${failure}`);
  }
  async read(url: string, deviceId: string, name: string): Promise<{ value: PropertyValue }> {
    this.next(`read ${url} ${deviceId} ${name}`);
    return { value: this.values.get(`${deviceId}/${name}`) ?? 0 };
  }
  async write(url: string, deviceId: string, name: string, value: PropertyValue): Promise<void> {
    this.next(`write ${url} ${deviceId} ${name}=${value}`);
  }
  async execute(url: string, deviceId: string, name: string): Promise<void> {
    this.next(`execute ${url} ${deviceId} ${name}`);
  }
}

describe('runDeviceJob (local Cosmos, scripted connector)', () => {
  let cosmos: TestCosmos;
  let deps: DeviceJobDependencies;
  let connector: ScriptedConnector;
  let clock = 0;
  const sleeps: number[] = [];
  const events: TwinEvent[] = [];
  const time = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
  let deviceCounter = 0;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    connector = new ScriptedConnector();
    deps = {
      jobs: new CosmosJobStore(await openJobsContainer(cosmos.client, 'run-job-test')),
      twins: new CosmosTwinStore(
        await openTwinsContainer(cosmos.client, 'run-job-test'),
        93,
        uniformObservation({ pmin: 1, pmax: 60 }),
      ),
      connector,
      retry: { maxDeliveryCount: 3, firstDelayMs: 1000, maxDelayMs: 3000 },
      deviceTimeoutMs: 5000,
      now: () => time(++clock),
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      events: { publish: async (batch) => void events.push(...batch) },
      warn: () => undefined,
      queue: { send: async () => undefined },
      maxWaitForDeviceSeconds: 86_400,
    };
  });
  afterAll(() => cosmos.close());
  beforeEach(() => {
    connector.calls.length = 0;
    connector.failures.length = 0;
    sleeps.length = 0;
    events.length = 0;
  });

  /** A provisioned device, connected through CONNECTOR_URL, with batteryLevel and timezone reported at time 0. */
  async function connectedDevice(state: 'connected' | 'disconnected' = 'connected'): Promise<string> {
    const deviceId = `dev-${++deviceCounter}`;
    await deps.twins.create(newTwin(deviceId, {}, time(0)));
    await deps.twins.update(deviceId, (twin) => ({
      ...twin,
      connection: { state, since: time(0), connectorId: 'a', connectorUrl: CONNECTOR_URL },
      deviceProperties: {
        batteryLevel: {
          ...observedProperty({ pmin: 1, pmax: 60 }, time(0)),
          value: 50,
          lastUpdatedTime: time(0),
          source: 'notify',
        },
        timezone: {
          ...observedProperty({ pmin: 1, pmax: 60 }, time(0)),
          value: 'UTC',
          lastUpdatedTime: time(0),
          source: 'notify',
        },
      },
    }));
    return deviceId;
  }

  async function queued(message: JobMessage): Promise<JobMessage> {
    const { jobId, ...request } = message;
    await deps.jobs.create(newJob(jobId, request, 'api', deps.now(), 3600));
    return message;
  }

  it('deep read: completes with the value and patches only that property, source deepRead', async () => {
    const deviceId = await connectedDevice();
    connector.values.set(`${deviceId}/batteryLevel`, 77);
    const message = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `r-${deviceId}`,
    });
    const before = await deps.twins.get(deviceId);
    const outcome = await runDeviceJob(deps, message, { deliveryCount: 1 });
    expect(outcome.action).toBe('ran');
    expect(outcome.job).toMatchObject({ status: 'completed', attempts: 1, result: { value: 77 } });
    expect(outcome.job.startedTime! <= outcome.job.endTime!).toBe(true);
    const twin = await deps.twins.get(deviceId);
    expect(twin?.deviceProperties.batteryLevel).toMatchObject({
      value: 77,
      source: 'deepRead',
      lastUpdatedTime: outcome.job.result?.lastUpdatedTime,
      stale: false,
    });
    expect(twin?.deviceProperties.timezone).toEqual(before?.deviceProperties.timezone);
    expect(connector.calls).toEqual([`read ${CONNECTOR_URL} ${deviceId} batteryLevel`]);
  });

  it('publishes jobEnded once per job, and propertyFresh when a deep read clears a stale flag', async () => {
    const deviceId = await connectedDevice();
    await deps.twins.update(deviceId, (twin) => ({
      ...twin,
      deviceProperties: {
        ...twin.deviceProperties,
        batteryLevel: {
          ...twin.deviceProperties.batteryLevel,
          stale: true,
          staleSince: time(0),
          staleReason: 'missedNotify',
        },
      },
    }));
    connector.values.set(`${deviceId}/batteryLevel`, 12);
    const message = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `e-${deviceId}`,
    });
    await runDeviceJob(deps, message, { deliveryCount: 1 });
    await runDeviceJob(deps, message, { deliveryCount: 2 }); // a redelivery: nothing runs, nothing is published
    expect(events.map((e) => [e.kind, e.property ?? e.status])).toEqual([
      ['propertyFresh', 'batteryLevel'],
      ['jobEnded', 'completed'],
    ]);
    expect(events[1]).toMatchObject({ deviceId, jobId: `e-${deviceId}` });
  });

  it('deep read never overwrites a newer notify', async () => {
    const deviceId = await connectedDevice();
    const future = time(1_000_000);
    await deps.twins.applyReadings(deviceId, [{ name: 'batteryLevel', value: 12, time: future, source: 'notify' }]);
    connector.values.set(`${deviceId}/batteryLevel`, 99);
    const message = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `rn-${deviceId}`,
    });
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 1 });
    expect(job.result?.value).toBe(99);
    expect((await deps.twins.get(deviceId))?.deviceProperties.batteryLevel).toMatchObject({
      value: 12,
      lastUpdatedTime: future,
    });
  });

  it('deep write and execute complete and leave the twin alone', async () => {
    const deviceId = await connectedDevice();
    const before = await deps.twins.get(deviceId);
    const write = await queued({
      type: 'writeDeviceProperty',
      deviceId,
      property: 'timezone',
      value: 'Europe/Paris',
      jobId: `w-${deviceId}`,
    });
    const execute = await queued({
      type: 'executeDeviceOperation',
      deviceId,
      operation: 'reboot',
      jobId: `x-${deviceId}`,
    });
    expect((await runDeviceJob(deps, write, { deliveryCount: 1 })).job).toMatchObject({ status: 'completed' });
    expect((await runDeviceJob(deps, execute, { deliveryCount: 1 })).job).toMatchObject({ status: 'completed' });
    expect(connector.calls).toEqual([
      `write ${CONNECTOR_URL} ${deviceId} timezone=Europe/Paris`,
      `execute ${CONNECTOR_URL} ${deviceId} reboot`,
    ]);
    const after = await deps.twins.get(deviceId);
    expect(after?.deviceProperties).toEqual(before?.deviceProperties);
    expect(after?.version).toBe(before?.version);
  });

  it('applies a redelivered or cancelled job never again', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'executeDeviceOperation',
      deviceId,
      operation: 'reboot',
      jobId: `d-${deviceId}`,
    });
    await runDeviceJob(deps, message, { deliveryCount: 1 });
    const again = await runDeviceJob(deps, message, { deliveryCount: 2 });
    expect(again).toMatchObject({ action: 'skipped', job: { status: 'completed', attempts: 1 } });
    const cancelled = await queued({
      type: 'executeDeviceOperation',
      deviceId,
      operation: 'reboot',
      jobId: `c-${deviceId}`,
    });
    await deps.jobs.update(deviceId, cancelled.jobId, (job) => ({ ...job, status: 'cancelled' }));
    expect(await runDeviceJob(deps, cancelled, { deliveryCount: 1 })).toMatchObject({
      action: 'skipped',
      job: { status: 'cancelled', attempts: 0 },
    });
    expect(connector.calls).toHaveLength(1);
  });

  it('creates the record of a job put on the queue by automation', async () => {
    const deviceId = await connectedDevice();
    const message: JobMessage = {
      type: 'readDeviceProperty',
      deviceId,
      property: 'timezone',
      jobId: `auto-${deviceId}`,
    };
    const { job } = await runDeviceJob(deps, JSON.stringify(message), { deliveryCount: 1 });
    expect(job).toMatchObject({ id: message.jobId, origin: 'queue', status: 'completed', attempts: 1 });
    expect(await deps.jobs.get(message.jobId)).toMatchObject({ status: 'completed' });
  });

  it('fails at once, without a throw, what can never succeed', async () => {
    const cases: [string, () => Promise<string>, (ErrorCode | Error)[], ErrorCode][] = [
      ['deprovisioned', async () => `gone-${++deviceCounter}`, [], 'DeviceNotFound'],
      ['twin disconnected', () => connectedDevice('disconnected'), [], 'DeviceNotConnected'],
      ['connector: rejected', () => connectedDevice(), ['DeviceRejected'], 'DeviceRejected'],
    ];
    for (const [name, device, failures, code] of cases) {
      const deviceId = await device();
      connector.failures.push(...failures);
      const message = await queued({
        type: 'readDeviceProperty',
        deviceId,
        property: 'batteryLevel',
        jobId: `f-${deviceId}`,
      });
      const { job } = await runDeviceJob(deps, message, { deliveryCount: 1 });
      expect({ name, status: job.status, code: job.error?.code }).toEqual({ name, status: 'failed', code });
    }
    expect(sleeps).toEqual([]);
  });

  it('throws on a transient error after a back-off, runs again on redelivery, fails on the last delivery', async () => {
    const deviceId = await connectedDevice();
    connector.values.set(`${deviceId}/batteryLevel`, 33);
    const message = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `t-${deviceId}`,
    });
    connector.failures.push('ConnectorUnavailable', new Error('socket hang up'));
    await expect(runDeviceJob(deps, message, { deliveryCount: 1 })).rejects.toBeInstanceOf(TransientJobError);
    expect(await deps.jobs.read(deviceId, message.jobId)).toMatchObject({
      status: 'queued',
      attempts: 1,
      lastError: { code: 'ConnectorUnavailable' },
    });
    await expect(runDeviceJob(deps, message, { deliveryCount: 2 })).rejects.toBeInstanceOf(TransientJobError);
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 3 });
    expect(job).toMatchObject({ status: 'completed', attempts: 3, result: { value: 33 } });
    expect(job).not.toHaveProperty('lastError');
    expect(sleeps).toEqual([1000, 2000]);

    const last = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `tl-${deviceId}`,
    });
    connector.failures.push('DeviceTimeout');
    const failed = await runDeviceJob(deps, last, { deliveryCount: 3 });
    expect(failed.job).toMatchObject({ status: 'failed', error: { code: 'DeviceTimeout' } });
  });

  it('dead-letters malformed messages with a reason, failing the job they name', async () => {
    const deviceId = await connectedDevice();
    const deadLetter = async (body: unknown) => {
      const error = await runDeviceJob(deps, body, { deliveryCount: 1 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(JobMessageDeadLetter);
      return error as JobMessageDeadLetter;
    };
    expect((await deadLetter('not json at all')).deadLetterReason).toBe('InvalidJobMessage');
    expect((await deadLetter(42)).deadLetterErrorDescription).toContain('JSON object');
    const noJobId = await deadLetter({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel' });
    expect(noJobId.deadLetterErrorDescription).toMatch(/^jobId: /);

    const named = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `m-${deviceId}`,
    });
    const invalid = await deadLetter({ ...named, property: 'flux' });
    expect(invalid.deadLetterErrorDescription).toMatch(/^property: Unknown property "flux"/);
    expect(await deps.jobs.read(deviceId, named.jobId)).toMatchObject({
      status: 'failed',
      error: { code: 'InvalidRequest' },
    });

    const other = await queued({ type: 'readDeviceProperty', deviceId, property: 'timezone', jobId: `o-${deviceId}` });
    const conflict = await deadLetter({ ...other, property: 'batteryLevel' });
    expect(conflict.deadLetterReason).toBe('JobConflict');
    expect(connector.calls).toEqual([]);
  });

  it('retries when the twin says connected but the connector holds no registration, until the twin says otherwise', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'batteryLevel',
      jobId: `nc-${deviceId}`,
    });
    connector.failures.push('DeviceNotConnected');
    await expect(runDeviceJob(deps, message, { deliveryCount: 1 })).rejects.toBeInstanceOf(TransientJobError);
    await deps.twins.update(deviceId, (twin) => ({ ...twin, connection: { state: 'disconnected', since: time(9) } }));
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 2 });
    expect(job).toMatchObject({ status: 'failed', attempts: 2, error: { code: 'DeviceNotConnected' } });
    expect(connector.calls).toHaveLength(1);
  });

  it('a write retried after an unknown outcome shows MayHaveRun, then reads first and skips a value already held', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'writeDeviceProperty',
      deviceId,
      property: 'timezone',
      value: 'Europe/Paris',
      jobId: `wm-${deviceId}`,
    });
    connector.failures.push('DeviceTimeout');
    await expect(runDeviceJob(deps, message, { deliveryCount: 1 })).rejects.toBeInstanceOf(TransientJobError);
    expect(await deps.jobs.read(deviceId, message.jobId)).toMatchObject({
      status: 'queued',
      attempts: 1,
      lastError: { code: 'MayHaveRun', cause: 'DeviceTimeout' },
    });
    // The device did apply the first write; its acknowledgement was lost.
    connector.values.set(`${deviceId}/timezone`, 'Europe/Paris');
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 2 });
    expect(job).toMatchObject({ status: 'completed', attempts: 2 });
    expect(job).not.toHaveProperty('lastError');
    expect(connector.calls).toEqual([
      `write ${CONNECTOR_URL} ${deviceId} timezone=Europe/Paris`,
      `read ${CONNECTOR_URL} ${deviceId} timezone`,
    ]);
  });

  it('a retried write whose value the device does not hold is written again', async () => {
    const deviceId = await connectedDevice();
    connector.values.set(`${deviceId}/timezone`, 'UTC');
    const message = await queued({
      type: 'writeDeviceProperty',
      deviceId,
      property: 'timezone',
      value: 'Asia/Tokyo',
      jobId: `wr-${deviceId}`,
    });
    connector.failures.push('ConnectorUnavailable');
    await expect(runDeviceJob(deps, message, { deliveryCount: 1 })).rejects.toBeInstanceOf(TransientJobError);
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 2 });
    expect(job).toMatchObject({ status: 'completed', attempts: 2 });
    expect(connector.calls).toEqual([
      `write ${CONNECTOR_URL} ${deviceId} timezone=Asia/Tokyo`,
      `read ${CONNECTOR_URL} ${deviceId} timezone`,
      `write ${CONNECTOR_URL} ${deviceId} timezone=Asia/Tokyo`,
    ]);
  });

  it('an execute with an unknown outcome is retried as MayHaveRun and fails as MayHaveRun on the last delivery', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'executeDeviceOperation',
      deviceId,
      operation: 'reboot',
      jobId: `xm-${deviceId}`,
    });
    // The connector went away mid-request, then (the next time) refused the connection: the first may have run.
    connector.failures.push(
      'ConnectorUnavailable',
      new TwinError('ConnectorUnavailable', 'connect ECONNREFUSED', { requestSent: false }),
      'DeviceTimeout',
    );
    await expect(runDeviceJob(deps, message, { deliveryCount: 1 })).rejects.toBeInstanceOf(TransientJobError);
    await expect(runDeviceJob(deps, message, { deliveryCount: 2 })).rejects.toBeInstanceOf(TransientJobError);
    expect(await deps.jobs.read(deviceId, message.jobId)).toMatchObject({
      status: 'queued',
      attempts: 2,
      lastError: {
        code: 'MayHaveRun',
        cause: 'ConnectorUnavailable',
        message: expect.stringMatching(/earlier attempt/),
      },
    });
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 3 });
    expect(job).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'MayHaveRun', cause: 'DeviceTimeout' } });
    expect(connector.calls).toHaveLength(3);
  });

  it('a write or execute whose request surely did not leave keeps its own error, not MayHaveRun', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'executeDeviceOperation',
      deviceId,
      operation: 'reboot',
      jobId: `xr-${deviceId}`,
    });
    connector.failures.push(new TwinError('ConnectorUnavailable', 'connect ECONNREFUSED', { requestSent: false }));
    await expect(runDeviceJob(deps, message, { deliveryCount: 1 })).rejects.toBeInstanceOf(TransientJobError);
    expect((await deps.jobs.read(deviceId, message.jobId))?.lastError).toEqual({
      code: 'ConnectorUnavailable',
      message: 'connect ECONNREFUSED',
    });
    connector.failures.push('DeviceRejected');
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 2 });
    expect(job).toMatchObject({ status: 'failed', error: { code: 'DeviceRejected' } });
  });

  it('a delivery that finds an execute still running (the previous one stopped mid-run) records MayHaveRun', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'executeDeviceOperation',
      deviceId,
      operation: 'reboot',
      jobId: `xs-${deviceId}`,
    });
    // What a host that died during the device call leaves behind.
    await deps.jobs.update(deviceId, message.jobId, (j) => ({ ...j, status: 'running', attempts: 1 }));
    connector.failures.push('ConnectorUnavailable');
    await expect(runDeviceJob(deps, message, { deliveryCount: 2 })).rejects.toBeInstanceOf(TransientJobError);
    expect(await deps.jobs.read(deviceId, message.jobId)).toMatchObject({
      attempts: 2,
      lastError: { code: 'MayHaveRun', cause: 'ConnectorUnavailable' },
    });
  });

  it('a delivery stamps sentTime: its message exists', async () => {
    const deviceId = await connectedDevice();
    const message = await queued({
      type: 'readDeviceProperty',
      deviceId,
      property: 'timezone',
      jobId: `s-${deviceId}`,
    });
    expect(await deps.jobs.read(deviceId, message.jobId)).not.toHaveProperty('sentTime');
    const { job } = await runDeviceJob(deps, message, { deliveryCount: 1 });
    expect(job.sentTime).toBe(job.startedTime);
  });

  it('backs off exponentially up to the cap', () => {
    const policy = { maxDeliveryCount: 10, firstDelayMs: 1000, maxDelayMs: 30_000 };
    expect([1, 2, 3, 4, 5, 6, 9, 100].map((n) => retryDelayMs(policy, n))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });
});
