import { BlobServiceClient } from '@azure/storage-blob';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestAzurite, type TestAzurite } from './support/azuriteBlob';
import { startFunctionsHostProcess, type HostProcess } from './support/functionsHostProcess';

const TIMER_APP = path.join(__dirname, 'fixtures', 'timerApp');

interface TimerLogEntry {
  host: string;
  fn: string;
  at: string;
  timer: {
    isPastDue: boolean;
    schedule: { adjustForDST: boolean };
    scheduleStatus: { last: string; next: string; lastUpdated: string } | null;
  };
}

describe('local Functions host timers: two hosts, one blob lease (real Azurite)', () => {
  let azurite: TestAzurite;
  let workDir: string;
  const hosts: HostProcess[] = [];

  beforeAll(async () => {
    azurite = await startTestAzurite();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'functions-host-timer-'));
  });

  afterAll(async () => {
    await Promise.all(hosts.map((host) => host.stop()));
    await azurite?.stop();
    await rm(workDir, { recursive: true, force: true });
  });

  const readLog = async (file: string): Promise<TimerLogEntry[]> =>
    (await readFile(file, 'utf8').catch(() => ''))
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as TimerLogEntry);

  const waitFor = async (condition: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) {
        throw new Error('condition not met in time');
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it('runs each timer on the lease holder only and fails over when it stops', async () => {
    const logFile = path.join(workDir, 'timer.log');
    const env = (label: string): Record<string, string> => ({
      AzureWebJobsStorage: azurite.connectionString,
      TIMER_LOG_FILE: logFile,
      HOST_LABEL: label,
      EVERY_SECOND_SCHEDULE: '* * * * * *',
    });
    const { host: hostA } = await startFunctionsHostProcess({ appRoot: TIMER_APP, env: env('A') });
    hosts.push(hostA);
    await hostA.waitForOutput(/Timer 'everySecond': this host holds the listener lock/);
    const { host: hostB } = await startFunctionsHostProcess({ appRoot: TIMER_APP, env: env('B') });
    hosts.push(hostB);

    await waitFor(async () => (await readLog(logFile)).filter((e) => e.fn === 'everySecond').length >= 3, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const beforeFailover = await readLog(logFile);
    expect(new Set(beforeFailover.map((e) => e.host))).toEqual(new Set(['A']));
    expect(hostB.output()).not.toContain('holds the listener lock');

    const everySecond = beforeFailover.filter((e) => e.fn === 'everySecond');
    const seconds = everySecond.map((e) => e.at.slice(0, 19));
    expect(new Set(seconds).size).toBe(seconds.length);
    expect(everySecond[0].timer).toEqual({ isPastDue: false, schedule: { adjustForDST: true }, scheduleStatus: null });

    const daily = beforeFailover.filter((e) => e.fn === 'daily');
    expect(daily).toHaveLength(1);
    expect(daily[0].timer.isPastDue).toBe(false);
    expect(daily[0].timer.scheduleStatus?.last).toBe('0001-01-01T00:00:00.000Z');
    const nextMidnight = new Date(daily[0].at);
    nextMidnight.setUTCHours(24, 0, 0, 0);
    expect(daily[0].timer.scheduleStatus?.next).toBe(nextMidnight.toISOString());

    expect(await hostA.stop()).toBe(0);
    const stoppedAt = new Date().toISOString();
    await hostB.waitForOutput(/Timer 'everySecond': this host holds the listener lock/, 10_000);
    await waitFor(async () => (await readLog(logFile)).some((e) => e.host === 'B' && e.fn === 'everySecond'), 10_000);

    const all = await readLog(logFile);
    const lastA =
      all
        .filter((e) => e.host === 'A')
        .map((e) => e.at)
        .sort()
        .pop() ?? '';
    const firstB = all
      .filter((e) => e.host === 'B')
      .map((e) => e.at)
      .sort()[0];
    expect(lastA < stoppedAt).toBe(true);
    expect(firstB > lastA).toBe(true);

    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'azure-webjobs-hosts',
    );
    const status = JSON.parse(
      (
        await container.getBlobClient('timers/timer-fixture-app/Host.Functions.daily/status').downloadToBuffer()
      ).toString(),
    ) as { Last: string; Next: string };
    expect(status.Next).toBe(nextMidnight.toISOString());

    expect(await hostB.stop()).toBe(0);
    const lease = await container
      .getBlobClient('locks/timer-fixture-app/Host.Functions.everySecond.Listener')
      .getProperties();
    expect(lease.leaseState).toBe('available');
  }, 90_000);
});
