import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { isTwinError } from '../../shared/errors';
import {
  DeepReadOutcome,
  DeepReader,
  parseMaxAge,
  parsePreferWait,
  readThroughDeviceProperty,
} from '../../shared/readThroughDeviceProperty';
import { newTwin, observedProperty } from '../../shared/twin';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { uniformObservation } from '../support/observation';

const GRACE = 93;
const T0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const attributes = uniformObservation({ pmin: 1, pmax: 60 });

/** A device behind a deep reader: answers with `value`, writing the twin as a deep-read job does, or never. */
class FakeDevice implements DeepReader {
  calls = 0;
  constructor(
    private readonly store: CosmosTwinStore,
    private readonly behaviour: { value: number; at: number } | 'silent' | { code: string },
  ) {}

  async readProperty(deviceId: string, property: string): Promise<DeepReadOutcome> {
    this.calls++;
    const behaviour = this.behaviour;
    if (behaviour === 'silent') return new Promise<DeepReadOutcome>(() => undefined);
    if ('code' in behaviour) return { status: 'failed', code: behaviour.code, message: 'the device said 4.05' };
    const time = at(behaviour.at);
    await this.store.applyReadings(deviceId, [{ name: property, value: behaviour.value, time, source: 'deepRead' }]);
    return { status: 'completed', value: behaviour.value, lastUpdatedTime: time };
  }
}

describe('readThroughDeviceProperty (max-age)', () => {
  let cosmos: TestCosmos;
  let store: CosmosTwinStore;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosTwinStore(await openTwinsContainer(cosmos.client, 'read-through'), GRACE, attributes);
    for (const [deviceId, state] of [
      ['dev-on', 'connected'],
      ['dev-off', 'disconnected'],
    ] as const) {
      await store.create(newTwin(deviceId, {}, at(0)));
      await store.update(deviceId, (twin) => ({
        ...twin,
        connection: { state, since: at(0) },
        deviceProperties: {
          batteryLevel: observedProperty(attributes.device, at(0)),
          memoryTotal: { ...observedProperty(attributes.device, at(0)), supported: false },
        },
      }));
      await store.applyReadings(deviceId, [{ name: 'batteryLevel', value: 50, time: at(100), source: 'notify' }]);
    }
  });
  afterAll(() => cosmos.close());

  const options = (maxAgeSeconds: number | undefined, nowSeconds: number, waitMs = 2000) => ({
    maxAgeSeconds,
    waitMs,
    now: () => at(nowSeconds),
  });

  it('answers from the twin when the value is young enough, without asking the device', async () => {
    const device = new FakeDevice(store, { value: 49, at: 130 });
    const result = await readThroughDeviceProperty(store, device, 'dev-on', 'batteryLevel', options(30, 130));
    expect(result).toMatchObject({ source: 'twin', property: { value: 50 } });
    expect(result.refresh).toBeUndefined();
    expect(device.calls).toBe(0);
    const plain = await readThroughDeviceProperty(store, device, 'dev-on', 'batteryLevel', options(undefined, 10 ** 6));
    expect(plain.source).toBe('twin');
    expect(device.calls).toBe(0);
  });

  it("answers with the device's value when the twin's is older than max-age", async () => {
    const device = new FakeDevice(store, { value: 47, at: 140 });
    const result = await readThroughDeviceProperty(store, device, 'dev-on', 'batteryLevel', options(30, 131));
    expect(device.calls).toBe(1);
    expect(result.source).toBe('device');
    expect(result.refresh).toEqual({ refreshed: true });
    expect(result.property).toMatchObject({ value: 47, lastUpdatedTime: at(140), source: 'deepRead', stale: false });
    expect((await store.get('dev-on'))?.deviceProperties.batteryLevel.value).toBe(47);
  });

  it("answers within the bound with the twin's value, marked, when the device does not answer", async () => {
    const device = new FakeDevice(store, 'silent');
    const started = performance.now();
    const result = await readThroughDeviceProperty(store, device, 'dev-on', 'batteryLevel', options(1, 10 ** 4, 300));
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1500);
    expect(result.source).toBe('twin');
    expect(result.refresh).toMatchObject({ refreshed: false, code: 'DeviceTimeout' });
    expect(result.property.value).toBe((await store.get('dev-on'))?.deviceProperties.batteryLevel.value);
  });

  it('passes a failed deep read on as the reason, and does not try a disconnected device or a missing resource', async () => {
    const rejecting = new FakeDevice(store, { code: 'DeviceRejected' });
    const failed = await readThroughDeviceProperty(store, rejecting, 'dev-on', 'batteryLevel', options(0, 10 ** 5));
    expect(failed).toMatchObject({ source: 'twin', refresh: { refreshed: false, code: 'DeviceRejected' } });

    const device = new FakeDevice(store, { value: 1, at: 10 ** 5 });
    const offline = await readThroughDeviceProperty(store, device, 'dev-off', 'batteryLevel', options(0, 10 ** 5));
    expect(offline).toMatchObject({ source: 'twin', property: { value: 50 } });
    expect(offline.refresh).toMatchObject({ refreshed: false, code: 'DeviceNotConnected' });
    const unsupported = await readThroughDeviceProperty(store, device, 'dev-on', 'memoryTotal', options(0, 10 ** 5));
    expect(unsupported.refresh).toMatchObject({ refreshed: false, code: 'PropertyNotSupported' });
    const noReader = await readThroughDeviceProperty(store, undefined, 'dev-on', 'batteryLevel', options(0, 10 ** 5));
    expect(noReader.refresh).toMatchObject({ refreshed: false, code: 'DeepReadUnavailable' });
    expect(device.calls).toBe(0);
  });

  it('keeps the shallow-read errors: unknown device, unknown property', async () => {
    const device = new FakeDevice(store, { value: 1, at: 1 });
    const missing = await readThroughDeviceProperty(store, device, 'nobody', 'batteryLevel', options(0, 1)).catch(
      (error: unknown) => error,
    );
    expect(isTwinError(missing, 'DeviceNotFound')).toBe(true);
    const unknown = await readThroughDeviceProperty(store, device, 'dev-on', 'colour', options(0, 1)).catch(
      (error: unknown) => error,
    );
    expect(isTwinError(unknown, 'PropertyNotFound')).toBe(true);
  });
});

describe('request freshness parameters', () => {
  it('reads max-age from Cache-Control and ?maxAge, taking the smaller', () => {
    expect(parseMaxAge(null, null)).toBeUndefined();
    expect(parseMaxAge('no-cache', null)).toBeUndefined();
    expect(parseMaxAge('no-transform, max-age=30', null)).toBe(30);
    expect(parseMaxAge('Max-Age="12"', null)).toBe(12);
    expect(parseMaxAge(null, '0')).toBe(0);
    expect(parseMaxAge('max-age=30', '10')).toBe(10);
    expect(parseMaxAge('max-age=99999999999', null)).toBe(2 ** 31);
  });

  it('refuses a malformed max-age with a 400 naming where it came from', () => {
    for (const [header, query, field] of [
      ['max-age=-1', null, 'Cache-Control'],
      ['max-age=soon', null, 'Cache-Control'],
      [null, '1.5', 'maxAge'],
      [null, '', 'maxAge'],
    ] as const) {
      let caught: unknown;
      try {
        parseMaxAge(header, query);
      } catch (error) {
        caught = error;
      }
      expect(isTwinError(caught, 'InvalidRequest')).toBe(true);
      expect((caught as { extensions: { field: string } }).extensions.field).toBe(field);
    }
  });

  it('takes Prefer: wait=N as a shorter bound, never a longer one, and ignores what it cannot read', () => {
    expect(parsePreferWait(null, 10_000)).toBe(10_000);
    expect(parsePreferWait('wait=3', 10_000)).toBe(3000);
    expect(parsePreferWait('respond-async, wait=2', 10_000)).toBe(2000);
    expect(parsePreferWait('wait=60', 10_000)).toBe(10_000);
    expect(parsePreferWait('wait=soon', 10_000)).toBe(10_000);
  });
});
