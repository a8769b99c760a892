/**
 * Queue mode end to end on the local stack: jobs for a sleeping simulated device wait (`waiting`) and run in
 * submission order at its next Update; a job whose time-to-live runs out while the device sleeps fails `DeviceAsleep`
 * (the waiting-job sweep, every 5 s on the test stack). A dedicated connector with a 5 s awake window.
 */
import { ChildProcess } from 'node:child_process';
import { JobView } from '../../shared/job';
import { SimulatedFleet, startSimulatedFleet } from '../../simulator';
import {
  ConnectorProcessSettings,
  dedicatedConnectorSettings,
  startConnectorProcess,
  stopProcess,
} from './connectorProcess';
import { api, uniqueDeviceId, waitFor } from './stackClient';

jest.setTimeout(120_000);

/** The connector's awake window and the devices' (equal: the device never sleeps while the connector sends). */
const AWAKE_WINDOW_SECONDS = 5;

async function submit(body: Record<string, unknown>): Promise<JobView> {
  const response = await api('POST', '/jobs', { body });
  expect({ status: response.status, body: response.body }).toMatchObject({ status: 202 });
  return response.body as JobView;
}

async function job(jobId: string): Promise<JobView> {
  const response = await api('GET', `/jobs/${encodeURIComponent(jobId)}`);
  expect(response.status).toBe(200);
  return response.body as JobView;
}

function inStatus(jobId: string, statuses: string[], timeoutMs = 60_000): Promise<JobView> {
  return waitFor(
    `job ${jobId} ${statuses.join('/')}`,
    async () => {
      const current = await job(jobId);
      return statuses.includes(current.status) ? current : undefined;
    },
    timeoutMs,
  );
}

describe('queue mode on the local stack', () => {
  let settings: ConnectorProcessSettings;
  let connector: ChildProcess;
  const fleets: SimulatedFleet[] = [];

  beforeAll(async () => {
    settings = await dedicatedConnectorSettings(`connector-queue-test-${process.pid}`);
    settings.env.Connector__awakeWindowSeconds = String(AWAKE_WINDOW_SECONDS);
    connector = await startConnectorProcess(settings);
  });
  afterAll(async () => {
    for (const fleet of fleets) await fleet.stop();
    if (connector) await stopProcess(connector, 'SIGTERM');
  });

  /** A provisioned queue-mode device, registered, its twin connected in queue mode, and asleep. */
  async function sleepingDevice(sleepIntervalMs: number) {
    const prefix = `${uniqueDeviceId('queue')}-`;
    const deviceId = `${prefix}001`;
    expect((await api('PUT', `/devices/${deviceId}`, { body: { security: { mode: 'none' } } })).status).toBeLessThan(
      300,
    );
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix,
      server: { host: '127.0.0.1', port: settings.coapPort },
      changeIntervalMs: 0,
      pmin: 0,
      pmax: 3600,
      queueMode: true,
      awakeWindowMs: AWAKE_WINDOW_SECONDS * 1000,
      sleepIntervalMs,
    });
    fleets.push(fleet);
    await fleet.allRegistered();
    const device = fleet.devices[0];
    await waitFor(
      `${deviceId} connected in queue mode`,
      async () => {
        const twin = (await api('GET', `/twins/${deviceId}`)).body as { connection: Record<string, unknown> };
        return twin.connection.state === 'connected' && twin.connection.queueMode === true ? true : undefined;
      },
      60_000,
    );
    await waitFor(`${deviceId} asleep`, async () => (device.isAsleep ? true : undefined), 30_000);
    return { device, deviceId };
  }

  it('jobs for a sleeping device wait, then run in submission order at its next Update', async () => {
    const { device, deviceId } = await sleepingDevice(20_000);
    let wokeAt: number | undefined;
    device.once('woke', () => (wokeAt = Date.now()));
    const zone = device.getValue('/3/0/15') === 'Asia/Tokyo' ? 'Europe/Lisbon' : 'Asia/Tokyo';
    const write = await submit({ type: 'writeDeviceProperty', deviceId, property: 'timezone', value: zone });
    const read = await submit({ type: 'readDeviceProperty', deviceId, property: 'timezone' });
    for (const { jobId } of [write, read]) {
      expect(await inStatus(jobId, ['waiting'], 15_000)).toMatchObject({ lastError: { code: 'DeviceAsleep' } });
    }
    expect(wokeAt).toBeUndefined();
    expect(device.getValue('/3/0/15')).not.toBe(zone);

    const done = [
      await inStatus(write.jobId, ['completed', 'failed'], 90_000),
      await inStatus(read.jobId, ['completed', 'failed'], 90_000),
    ];
    expect(done.map((j) => j.status)).toEqual(['completed', 'completed']);
    expect(done[1].result?.value).toBe(zone);
    // Both ran after the wake (startedTime is the first attempt's, which found the device asleep), in order.
    expect(Date.parse(done[0].endTime as string)).toBeGreaterThanOrEqual(wokeAt as number);
    expect((done[1].endTime as string) >= (done[0].endTime as string)).toBe(true);
    expect(device.getValue('/3/0/15')).toBe(zone);
  });

  it('a job whose time-to-live runs out while the device sleeps fails DeviceAsleep', async () => {
    const { device, deviceId } = await sleepingDevice(600_000);
    const submitted = await submit({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel', ttlSeconds: 3 });
    const failed = await inStatus(submitted.jobId, ['failed', 'completed'], 30_000);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'DeviceAsleep' } });
    expect(device.isAsleep).toBe(true);
  });
});
