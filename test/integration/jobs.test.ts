/**
 * Deep read, deep write and execute as jobs, end to end on the local stack: HTTP -> Functions host -> Cosmos and
 * the local Service Bus endpoint -> runDeviceJob (session trigger) -> connector -> simulated LwM2M devices over UDP.
 */
import { ServiceBusClient } from '@azure/service-bus';
import { loadCosmosConfig } from '../../shared/config';
import { JOBS_QUEUE } from '../../shared/constants';
import { createCosmosClient } from '../../shared/cosmosClient';
import { CosmosJobStore, openJobsContainer } from '../../shared/cosmosJobStore';
import { JobView, newJob } from '../../shared/job';
import { resendUnsentJobs } from '../../shared/resendUnsentJobs';
import { ServiceBusJobQueue } from '../../shared/serviceBusJobQueue';
import { SimulatedFleet, startSimulatedFleet } from '../../simulator';
import { dedicatedConnectorSettings, startConnectorProcess, stopProcess } from './connectorProcess';
import { api, uniqueDeviceId, waitFor } from './stackClient';

jest.setTimeout(90_000);

type Json = Record<string, unknown>;
interface TwinBody {
  connection: { state: string; connectorUrl?: string };
  version: number;
  deviceProperties: Record<string, { value?: unknown; source?: string; lastUpdatedTime?: string; supported?: false }>;
}

const FINAL = ['completed', 'failed', 'cancelled'];
const settings = (): Record<string, string> => JSON.parse(process.env.LWM2M_TEST_SETTINGS ?? '{}');
const stackCoapPort = (): number => Number(process.env.LWM2M_TEST_COAP_PORT);

async function submit(body: Json): Promise<JobView> {
  const response = await api('POST', '/jobs', { body });
  expect({ status: response.status, body: response.body }).toMatchObject({ status: 202 });
  return response.body as JobView;
}

async function job(jobId: string): Promise<JobView> {
  const response = await api('GET', `/jobs/${encodeURIComponent(jobId)}`);
  expect(response.status).toBe(200);
  return response.body as JobView;
}

function finished(jobId: string, timeoutMs = 30_000): Promise<JobView> {
  return waitFor(
    `job ${jobId} to end`,
    async () => {
      const current = await job(jobId);
      return FINAL.includes(current.status) ? current : undefined;
    },
    timeoutMs,
  );
}

/**
 * The twin once the device's first reports are all in (every supported property has a value) and no write landed
 * for 500 ms (the connector batches notifies).
 */
async function settledTwin(deviceId: string): Promise<TwinBody> {
  let previous: TwinBody | undefined;
  return waitFor(`the twin of ${deviceId} to settle`, async () => {
    const current = await twin(deviceId);
    const reported = Object.values(current.deviceProperties).every(
      (property) => property.supported === false || property.lastUpdatedTime !== undefined,
    );
    const stable = reported && previous !== undefined && previous.version === current.version;
    previous = current;
    if (!stable) await new Promise((resolve) => setTimeout(resolve, 450));
    return stable ? current : undefined;
  });
}

async function twin(deviceId: string): Promise<TwinBody> {
  const response = await api('GET', `/twins/${deviceId}`);
  expect(response.status).toBe(200);
  return response.body as TwinBody;
}

/** Provisions `count` devices, starts them as a simulated fleet, and waits until their twins are connected and filled. */
async function startDevices(
  count: number,
  options: { port?: number; prefix?: string; connectorUrl?: string } = {},
): Promise<{ fleet: SimulatedFleet; ids: string[] }> {
  const prefix = options.prefix ?? `${uniqueDeviceId('job')}-`;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`);
  for (const id of ids)
    expect((await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } })).status).toBeLessThan(300);
  const fleet = await startSimulatedFleet({
    count,
    prefix,
    server: { host: '127.0.0.1', port: options.port ?? stackCoapPort() },
    // Values change only when a test says so, and notifies come only for those changes.
    changeIntervalMs: 0,
    pmin: 0,
    pmax: 3600,
    rebootDelayMs: 200,
  });
  await fleet.allRegistered();
  for (const id of ids) {
    await waitFor(`${id} connected with a battery level`, async () => {
      const body = await twin(id);
      const connected =
        body.connection.state === 'connected' &&
        (options.connectorUrl === undefined || body.connection.connectorUrl === options.connectorUrl);
      return connected && body.deviceProperties.batteryLevel?.value !== undefined ? body : undefined;
    });
  }
  return { fleet, ids };
}

describe('jobs on simulated devices', () => {
  let fleet: SimulatedFleet;
  let deviceId: string;

  beforeAll(async () => {
    ({
      fleet,
      ids: [deviceId],
    } = await startDevices(1));
  });
  afterAll(() => fleet.stop());

  it("a read job completes with the device's value and changes only that twin property (source deepRead)", async () => {
    const device = fleet.devices[0];
    device.pauseNotifications();
    const before = await settledTwin(deviceId);
    const value = before.deviceProperties.batteryLevel.value === 42 ? 43 : 42;
    device.setValue('/3/0/9', value);

    const submitted = await submit({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel' });
    expect(submitted).toMatchObject({ status: 'queued', attempts: 0, origin: 'api' });
    const done = await finished(submitted.jobId);
    expect(done).toMatchObject({ status: 'completed', attempts: 1, result: { value } });

    const after = await twin(deviceId);
    expect(after.deviceProperties.batteryLevel).toMatchObject({
      value,
      source: 'deepRead',
      lastUpdatedTime: done.result?.lastUpdatedTime,
    });
    const { batteryLevel: _a, ...othersBefore } = before.deviceProperties;
    const { batteryLevel: _b, ...othersAfter } = after.deviceProperties;
    expect(othersAfter).toEqual(othersBefore);
    expect(after.version).toBe(before.version + 1);
    device.resumeNotifications();
  });

  it('a write job on timezone completes; the twin keeps the old value until the next notify', async () => {
    const device = fleet.devices[0];
    device.pauseNotifications();
    const old = (await twin(deviceId)).deviceProperties.timezone.value;
    const value = old === 'Europe/Paris' ? 'Asia/Tokyo' : 'Europe/Paris';
    const done = await finished(
      (await submit({ type: 'writeDeviceProperty', deviceId, property: 'timezone', value })).jobId,
    );
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    expect(done).not.toHaveProperty('result');
    expect(device.getValue('/3/0/15')).toBe(value);
    expect((await twin(deviceId)).deviceProperties.timezone.value).toBe(old);

    device.resumeNotifications();
    const caughtUp = await waitFor('the notify of the new timezone', async () => {
      const property = (await twin(deviceId)).deviceProperties.timezone;
      return property.value === value ? property : undefined;
    });
    expect(caughtUp.source).toBe('notify');
  });

  it('a job message delivered twice is applied once; a message from automation gets a job record', async () => {
    const device = fleet.devices[0];
    const writes: string[] = [];
    const onRequest = (request: { method: string; path: string }) => {
      if (request.method === 'PUT' && request.path.startsWith('/3/0/15')) writes.push(request.path);
    };
    device.on('request', onRequest);
    const client = new ServiceBusClient(settings().ServiceBusConnection);
    const sender = client.createSender(JOBS_QUEUE);
    try {
      const jobId = uniqueDeviceId('twice');
      const body = { type: 'writeDeviceProperty', deviceId, property: 'timezone', value: 'America/Chicago', jobId };
      // Two deliveries of one job (as when automation retries a send after the duplicate-detection window).
      for (const messageId of [jobId, `${jobId}-again`]) {
        await sender.sendMessages({ body, messageId, sessionId: deviceId, contentType: 'application/json' });
      }
      // A read after them on the same session ends only once both were handled (sessions keep order).
      const sentinel = await submit({ type: 'readDeviceProperty', deviceId, property: 'timezone' });
      expect(await finished(sentinel.jobId)).toMatchObject({
        status: 'completed',
        result: { value: 'America/Chicago' },
      });
      expect(await job(jobId)).toMatchObject({ status: 'completed', attempts: 1, origin: 'queue' });
      expect(writes).toHaveLength(1);
    } finally {
      device.off('request', onRequest);
      await sender.close();
      await client.close();
    }
  });

  it('20 alternating write and read jobs submitted back to back run in submission order', async () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Africa/Cairo', 'Australia/Sydney'];
    const submitted: { jobId: string; expect?: string }[] = [];
    for (let i = 0; i < 10; i++) {
      const value = `${zones[i % zones.length]}`;
      const write = await submit({ type: 'writeDeviceProperty', deviceId, property: 'timezone', value });
      const read = await submit({ type: 'readDeviceProperty', deviceId, property: 'timezone' });
      submitted.push({ jobId: write.jobId }, { jobId: read.jobId, expect: value });
    }
    const done: JobView[] = [];
    for (const { jobId } of submitted) done.push(await finished(jobId, 60_000));
    expect(done.map((j) => j.status)).toEqual(Array(20).fill('completed'));
    submitted.forEach((s, i) => {
      if (s.expect !== undefined) expect({ i, value: done[i].result?.value }).toEqual({ i, value: s.expect });
    });
    for (let i = 1; i < done.length; i++) {
      expect((done[i].startedTime as string) >= (done[i - 1].endTime as string)).toBe(true);
    }
  });

  it('executing reboot completes and makes the simulated device register again', async () => {
    const device = fleet.devices[0];
    const registrations = device.counters.registrations;
    const rebooted = new Promise((resolve) => device.once('rebooted', resolve));
    const done = await finished(
      (await submit({ type: 'executeDeviceOperation', deviceId, operation: 'reboot' })).jobId,
    );
    expect(done).toMatchObject({ status: 'completed', attempts: 1 });
    await rebooted;
    await waitFor('the registration after the reboot', async () =>
      device.counters.registrations > registrations && device.isRegistered ? true : undefined,
    );
    expect(device.counters.reboots).toBe(1);
  });
});

describe('jobs on several devices', () => {
  it('run in parallel across devices', async () => {
    const { fleet, ids } = await startDevices(4);
    try {
      // Each device ignores its first request, so each job lasts a CoAP retransmission (2-3 s): in parallel
      // they overlap; one after another they could not.
      for (const device of fleet.devices) device.setUnreachable(true);
      const jobs = [];
      for (const id of ids)
        jobs.push(await submit({ type: 'readDeviceProperty', deviceId: id, property: 'memoryFree' }));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const device of fleet.devices) device.setUnreachable(false);
      const done = await Promise.all(jobs.map((j) => finished(j.jobId)));
      expect(done.map((j) => j.status)).toEqual(Array(4).fill('completed'));
      const latestStart = done
        .map((j) => j.startedTime as string)
        .sort()
        .at(-1) as string;
      const earliestEnd = done.map((j) => j.endTime as string).sort()[0];
      expect(latestStart < earliestEnd).toBe(true);
    } finally {
      await fleet.stop();
    }
  });
});

describe('job faults', () => {
  it('a job for a device that is not connected fails fast with DeviceNotConnected', async () => {
    const deviceId = uniqueDeviceId('offline');
    await api('PUT', `/devices/${deviceId}`, { body: { security: { mode: 'none' } } });
    const started = Date.now();
    const done = await finished(
      (await submit({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel' })).jobId,
    );
    expect(done).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'DeviceNotConnected' } });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('malformed messages put on the queue are dead-lettered with a reason, and the host keeps running', async () => {
    const client = new ServiceBusClient(settings().ServiceBusConnection);
    const sender = client.createSender(JOBS_QUEUE);
    const deadLetters = client.createReceiver(JOBS_QUEUE, { subQueueType: 'deadLetter' });
    const tag = uniqueDeviceId('bad');
    const cases = [
      { messageId: `${tag}-text`, body: 'launch the rockets', field: '' },
      {
        messageId: `${tag}-nojob`,
        body: { type: 'readDeviceProperty', deviceId: 'x1', property: 'batteryLevel' },
        field: 'jobId',
      },
      { messageId: `${tag}-type`, body: { type: 'selfDestruct', deviceId: 'x1', jobId: `${tag}-j` }, field: 'type' },
    ];
    try {
      for (const { messageId, body } of cases)
        await sender.sendMessages({ body, messageId, sessionId: `${tag}-session` });
      const found = new Map<string, { reason?: string; description?: string }>();
      await waitFor('the dead-lettered messages', async () => {
        for (const message of await deadLetters.receiveMessages(10, { maxWaitTimeInMs: 500 })) {
          const id = String(message.messageId);
          if (id.startsWith(tag)) {
            found.set(id, { reason: message.deadLetterReason, description: message.deadLetterErrorDescription });
          }
          await deadLetters.completeMessage(message);
        }
        return found.size === cases.length ? true : undefined;
      });
      for (const { messageId, field } of cases) {
        const entry = found.get(messageId);
        expect({ messageId, reason: entry?.reason }).toEqual({ messageId, reason: 'InvalidJobMessage' });
        if (field) expect(entry?.description).toMatch(new RegExp(`^${field}: `));
      }
    } finally {
      await deadLetters.close();
      await sender.close();
      await client.close();
    }
    expect((await api('GET', `/jobs/${tag}-missing`)).status).toBe(404);
  });

  it('a job whose queue send failed is sent again by the unsent-job sweep and completes', async () => {
    const { fleet, ids } = await startDevices(1);
    const cosmosConfig = loadCosmosConfig(settings());
    const cosmosClient = createCosmosClient(cosmosConfig);
    const serviceBus = new ServiceBusClient(settings().ServiceBusConnection);
    const sender = serviceBus.createSender(JOBS_QUEUE);
    try {
      const deviceId = ids[0];
      const jobs = new CosmosJobStore(await openJobsContainer(cosmosClient, cosmosConfig.databaseName));
      // What a submission whose send failed leaves behind: the record, `queued`, without sentTime, and no message.
      const jobId = uniqueDeviceId('unsent');
      const request = { type: 'writeDeviceProperty' as const, deviceId, property: 'timezone', value: 'Pacific/Fiji' };
      const createdTime = new Date().toISOString();
      await jobs.create(newJob(jobId, request, 'api', createdTime, 3600));
      expect(await job(jobId)).toMatchObject({ status: 'queued', attempts: 0 });
      expect(await job(jobId)).not.toHaveProperty('sentTime');

      // The sweep's clock: past the re-send bound, before the max age.
      const summary = await resendUnsentJobs(jobs, new ServiceBusJobQueue(sender), {
        now: new Date(Date.parse(createdTime) + 121_000).toISOString(),
        resendAfterSeconds: 120,
        maxAgeSeconds: 1800,
      });
      expect(summary.sendFailures).toEqual([]);
      expect(summary.resent).toBeGreaterThanOrEqual(1);

      const done = await finished(jobId);
      expect(done).toMatchObject({ status: 'completed', attempts: 1, sentTime: expect.any(String) });
      expect(fleet.devices[0].getValue('/3/0/15')).toBe('Pacific/Fiji');
    } finally {
      await sender.close();
      await serviceBus.close();
      cosmosClient.dispose();
      await fleet.stop();
    }
  });

  it('jobs are redelivered while the connector is stopped and complete once it is back', async () => {
    const dedicated = await dedicatedConnectorSettings(`connector-jobs-test-${process.pid}`);
    const { connectorUrl, coapPort } = dedicated;
    let connector = await startConnectorProcess(dedicated);
    const prefix = `${uniqueDeviceId('crash')}-`;
    const { fleet, ids } = await startDevices(1, { port: coapPort, prefix, connectorUrl });
    const deviceId = ids[0];
    try {
      const first = await submit({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel' });
      expect(await finished(first.jobId)).toMatchObject({ status: 'completed' });

      await stopProcess(connector, 'SIGKILL');
      const jobs = [
        await submit({ type: 'writeDeviceProperty', deviceId, property: 'timezone', value: 'Europe/Madrid' }),
        await submit({ type: 'readDeviceProperty', deviceId, property: 'timezone' }),
      ];
      const retrying = await waitFor('a delivery that met the stopped connector', async () => {
        const current = await job(jobs[0].jobId);
        return current.lastError ? current : undefined;
      });
      expect(retrying).toMatchObject({
        status: expect.stringMatching(/queued|running/),
        lastError: { code: 'ConnectorUnavailable' },
      });

      // The connector comes back with the device's registration (test/integration/connectorRestart.test.ts).
      connector = await startConnectorProcess(dedicated);

      const done = await Promise.all(jobs.map((j) => finished(j.jobId, 60_000)));
      expect(done.map((j) => j.status)).toEqual(['completed', 'completed']);
      expect(done[0].attempts).toBeGreaterThanOrEqual(2);
      expect(done[1].result?.value).toBe('Europe/Madrid');
    } finally {
      await fleet.stop();
      await stopProcess(connector, 'SIGTERM');
    }
  });
});

describe('jobs HTTP API', () => {
  it('answers an invalid POST body with 400 naming the field, and nothing is recorded', async () => {
    const deviceId = uniqueDeviceId('api');
    await api('PUT', `/devices/${deviceId}`, { body: { security: { mode: 'none' } } });
    const cases: [unknown, number, string][] = [
      [{ deviceId, property: 'batteryLevel' }, 400, 'type'],
      [{ type: 'readDeviceProperty', deviceId: 'bad id', property: 'batteryLevel' }, 400, 'deviceId'],
      [{ type: 'readDeviceProperty', deviceId, property: 'flux' }, 400, 'property'],
      [{ type: 'writeDeviceProperty', deviceId, property: 'timezone', value: 7 }, 400, 'value'],
      [{ type: 'writeDeviceProperty', deviceId, property: 'timezone' }, 400, 'value'],
      [{ type: 'readDeviceProperty', deviceId, property: 'batteryLevel', extra: 1 }, 400, 'extra'],
      [{ type: 'readDeviceProperty', deviceId, property: 'batteryLevel', jobId: 'a b' }, 400, 'jobId'],
      [{ type: 'writeDeviceProperty', deviceId, property: 'batteryLevel', value: 5 }, 422, 'property'],
      [{ type: 'executeDeviceOperation', deviceId, operation: 'timezone' }, 422, 'operation'],
      [{ type: 'readDeviceProperty', deviceId: uniqueDeviceId('nobody'), property: 'batteryLevel' }, 404, 'deviceId'],
      [[1, 2], 400, ''],
    ];
    for (const [body, status, field] of cases) {
      const response = await api('POST', '/jobs', { body });
      expect({ body, status: response.status, field: (response.body as Json)?.field }).toEqual({ body, status, field });
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    }
    const malformed = await api('POST', '/jobs', {
      rawBody: '{"type":',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed).toMatchObject({ status: 400, body: { code: 'InvalidJson' } });
    expect((await api('GET', `/devices/${deviceId}/jobs`)).body).toMatchObject({ jobs: [], count: 0 });
  });

  it('is idempotent under a client jobId, lists a device newest first over pages, and cancels a queued job', async () => {
    const deviceId = uniqueDeviceId('idem');
    await api('PUT', `/devices/${deviceId}`, { body: { security: { mode: 'none' } } });
    const jobId = uniqueDeviceId('client-job');
    const body = { type: 'readDeviceProperty', deviceId, property: 'batteryLevel', jobId };
    const first = await api('POST', '/jobs', { body });
    expect(first.status).toBe(202);
    expect(first.headers.get('location')).toBe(`/api/jobs/${jobId}`);
    const again = await api('POST', '/jobs', { body });
    expect(again.status).toBe(200);
    expect((again.body as JobView).createdTime).toBe((first.body as JobView).createdTime);
    const conflict = await api('POST', '/jobs', { body: { ...body, property: 'memoryFree' } });
    expect(conflict).toMatchObject({ status: 409, body: { code: 'JobConflict', field: 'jobId' } });

    const ids = [jobId];
    for (let i = 0; i < 4; i++)
      ids.push((await submit({ type: 'readDeviceProperty', deviceId, property: 'timezone' })).jobId);
    const listed: string[] = [];
    let continuation: string | null = null;
    do {
      const page = await api('GET', `/devices/${deviceId}/jobs?pageSize=2`, {
        headers: continuation ? { 'x-ms-continuation': continuation } : {},
      });
      expect(page.status).toBe(200);
      listed.push(...(page.body as { jobs: JobView[] }).jobs.map((j) => j.jobId));
      continuation = page.headers.get('x-ms-continuation');
    } while (continuation);
    expect(listed).toEqual([...ids].reverse());
    expect((await api('GET', `/devices/${deviceId}/jobs?pageSize=500`)).body).toMatchObject({ field: 'pageSize' });

    // The device never connected, so each job fails at once; cancel one that is still queued or find it ended.
    const cancellable = await submit({ type: 'executeDeviceOperation', deviceId, operation: 'reboot' });
    const cancelled = await api('DELETE', `/jobs/${cancellable.jobId}`);
    if (cancelled.status === 200) {
      expect(cancelled.body).toMatchObject({ status: 'cancelled' });
      expect(await finished(cancellable.jobId)).toMatchObject({ status: 'cancelled', attempts: 0 });
    } else {
      expect(cancelled.body).toMatchObject({ status: 409, code: 'JobNotCancellable' });
    }
    const ended = await finished(ids[0]);
    expect(await api('DELETE', `/jobs/${ended.jobId}`)).toMatchObject({
      status: 409,
      body: { code: 'JobNotCancellable' },
    });
    expect(await api('DELETE', `/jobs/${uniqueDeviceId('none')}`)).toMatchObject({
      status: 404,
      body: { code: 'JobNotFound' },
    });
  });
});
