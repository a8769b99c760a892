import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  loadLocalSettings,
  parseTimeSpan,
  readHostSettings,
  resolveAppSettingReferences,
} from '../../../local/functionsHost/hostSettings';

describe('host settings', () => {
  let appRoot: string;

  beforeEach(async () => {
    appRoot = await mkdtemp(path.join(os.tmpdir(), 'functions-host-settings-'));
  });

  afterEach(async () => {
    await rm(appRoot, { recursive: true, force: true });
  });

  it('parses .NET TimeSpans as host.json writes them', () => {
    expect(parseTimeSpan('00:00:05')).toBe(5_000);
    expect(parseTimeSpan('00:05:00')).toBe(300_000);
    expect(parseTimeSpan('1.02:00:00')).toBe(26 * 3_600_000);
    expect(parseTimeSpan('00:00:00.250')).toBe(250);
    expect(parseTimeSpan('5s')).toBeUndefined();
    expect(parseTimeSpan('00:61:00')).toBeUndefined();
  });

  it('reads the route prefix, Service Bus and singleton settings, with runtime defaults', async () => {
    expect(await readHostSettings(appRoot)).toMatchObject({
      routePrefix: 'api',
      serviceBus: { maxConcurrentSessions: 8, sessionIdleTimeoutMs: 60_000, autoCompleteMessages: true },
      singleton: { listenerLockPeriodMs: 60_000, listenerLockRecoveryPollingIntervalMs: 60_000 },
      logLevel: 'information',
    });
    await writeFile(
      path.join(appRoot, 'host.json'),
      JSON.stringify({
        version: '2.0',
        logging: { logLevel: { default: 'Warning' } },
        extensions: {
          http: { routePrefix: '/v1/' },
          serviceBus: {
            maxConcurrentSessions: 2,
            sessionIdleTimeout: '00:00:05',
            maxAutoLockRenewalDuration: '00:01:00',
          },
        },
        singleton: { listenerLockPeriod: '00:00:15' },
      }),
    );
    expect(await readHostSettings(appRoot)).toMatchObject({
      routePrefix: 'v1',
      serviceBus: { maxConcurrentSessions: 2, sessionIdleTimeoutMs: 5_000, maxAutoLockRenewalDurationMs: 60_000 },
      singleton: { listenerLockPeriodMs: 15_000 },
      logLevel: 'warning',
    });
  });

  it('names the file and the setting when host.json is wrong', async () => {
    await writeFile(path.join(appRoot, 'host.json'), '{ not json');
    await expect(readHostSettings(appRoot)).rejects.toThrow(/host\.json is not valid JSON/);
    await writeFile(
      path.join(appRoot, 'host.json'),
      JSON.stringify({ extensions: { serviceBus: { sessionIdleTimeout: '5 seconds' } } }),
    );
    await expect(readHostSettings(appRoot)).rejects.toThrow(
      /extensions\.serviceBus\.sessionIdleTimeout must be a TimeSpan such as "00:00:30", got "5 seconds"/,
    );
    await writeFile(
      path.join(appRoot, 'host.json'),
      JSON.stringify({ extensions: { serviceBus: { maxConcurrentSessions: 0 } } }),
    );
    await expect(readHostSettings(appRoot)).rejects.toThrow(/maxConcurrentSessions must be a positive integer/);
  });

  it('loads local.settings.json Values without overriding what is set', async () => {
    const env: NodeJS.ProcessEnv = { ALREADY_SET: 'environment' };
    expect(await loadLocalSettings(appRoot, env)).toEqual([]);
    await writeFile(
      path.join(appRoot, 'local.settings.json'),
      JSON.stringify({ IsEncrypted: false, Values: { ALREADY_SET: 'file', NEW_ONE: 'file', PORT_NUMBER: 5 } }),
    );
    expect(await loadLocalSettings(appRoot, env)).toEqual(['NEW_ONE', 'PORT_NUMBER']);
    expect(env).toEqual({ ALREADY_SET: 'environment', NEW_ONE: 'file', PORT_NUMBER: '5' });
  });

  it('resolves %Setting% references and names a missing one', () => {
    expect(resolveAppSettingReferences('%A%-%B%', { A: 'x', B: 'y' }, 'here')).toBe('x-y');
    expect(resolveAppSettingReferences('0 */5 * * * *', {}, 'here')).toBe('0 */5 * * * *');
    expect(() => resolveAppSettingReferences('%NOPE%', {}, "Function 'f' (schedule)")).toThrow(
      "Function 'f' (schedule) refers to app setting '%NOPE%', which is not set.",
    );
  });
});
