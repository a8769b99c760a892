import { Container } from '@azure/cosmos';
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { QUERY_REQUESTS_PER_PAGE, flagStaleProperties } from '../../shared/flagStaleProperties';
import { DeviceProperty, Reading, TwinDocument, newTwin } from '../../shared/twin';
import { TwinStore } from '../../shared/twinStore';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { uniformObservation } from '../support/observation';

const GRACE = 93;
const PMAX = 60;
const T0 = Date.UTC(2026, 0, 1);
/** The ISO time `seconds` (may be fractional) after T0: the injected clock of every sweep here. */
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const attributes = uniformObservation({ pmin: 1, pmax: PMAX });
const notify = (name: string, value: number | string, seconds: number, source: Reading['source'] = 'notify') => ({
  name,
  value,
  time: at(seconds),
  source,
});

function observed(seconds: number, init: Partial<DeviceProperty> = {}): DeviceProperty {
  return { pmin: 1, pmax: PMAX, supported: true, stale: false, observedSince: at(seconds), ...init };
}

/** A provisioned twin whose device registered at `registeredAt` s and announced `properties`. */
async function registered(
  store: TwinStore,
  deviceId: string,
  properties: Record<string, DeviceProperty>,
  state: 'connected' | 'disconnected' = 'connected',
): Promise<void> {
  await store.create(newTwin(deviceId, {}, at(0)));
  await store.update(deviceId, (twin) => ({
    ...twin,
    connection: { state, since: at(0), lastActivityTime: at(0) },
    deviceProperties: properties,
  }));
}

describe('flagStaleProperties over CosmosTwinStore (local Cosmos, injected clock)', () => {
  let cosmos: TestCosmos;
  let databases = 0;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
  });
  afterAll(() => cosmos.close());

  /** Each test gets its own database, so the due query sees only that test's twins. */
  async function freshContainer(): Promise<Container> {
    return openTwinsContainer(cosmos.client, `sweep-${++databases}`);
  }

  it('flags a property exactly after pmax + grace and not before, with staleSince, reason and an event', async () => {
    const store = new CosmosTwinStore(await freshContainer(), GRACE, attributes);
    await registered(store, 'dev-a', { batteryLevel: observed(0) });
    await store.applyReadings('dev-a', [notify('batteryLevel', 80, 10)]);
    const staleAt = 10 + PMAX + GRACE;

    // The notify's one-request patch left the due time at the registration's; the first sweep corrects it.
    const early = await flagStaleProperties(store, { now: at(staleAt - 1), graceSeconds: GRACE });
    expect(early).toMatchObject({ dueTwins: 1, correctedTwins: 1, flaggedProperties: 0, events: [] });
    expect(await flagStaleProperties(store, { now: at(staleAt - 1), graceSeconds: GRACE })).toMatchObject({
      dueTwins: 0,
    });
    const onTheDot = await flagStaleProperties(store, { now: at(staleAt), graceSeconds: GRACE });
    expect(onTheDot).toMatchObject({ dueTwins: 1, flaggedProperties: 0, correctedTwins: 0, events: [] });
    expect((await store.get('dev-a'))?.deviceProperties.batteryLevel.stale).toBe(false);

    const after = await flagStaleProperties(store, { now: at(staleAt + 0.001), graceSeconds: GRACE });
    expect(after).toMatchObject({ dueTwins: 1, flaggedTwins: 1, flaggedProperties: 1, failures: [], complete: true });
    expect(after.events).toEqual([
      { deviceId: 'dev-a', kind: 'propertyStale', property: 'batteryLevel', time: at(staleAt), reason: 'missedNotify' },
    ]);
    const twin = (await store.get('dev-a')) as TwinDocument;
    expect(twin.deviceProperties.batteryLevel).toMatchObject({
      value: 80,
      lastUpdatedTime: at(10),
      stale: true,
      staleSince: at(staleAt),
      staleReason: 'missedNotify',
    });
    expect(twin.staleProperties).toEqual(['batteryLevel']);
    expect(twin.nextStaleAt).toBeUndefined();
    // Flagged once: the twin is no longer due.
    expect(await flagStaleProperties(store, { now: at(staleAt + 3600), graceSeconds: GRACE })).toMatchObject({
      dueTwins: 0,
      requests: QUERY_REQUESTS_PER_PAGE,
    });
  });

  it('counts a never-valued property from registration and says disconnected when the device is gone', async () => {
    const store = new CosmosTwinStore(await freshContainer(), GRACE, attributes);
    await registered(store, 'dev-b', { timezone: observed(20) }, 'disconnected');
    expect((await flagStaleProperties(store, { now: at(20 + PMAX + GRACE), graceSeconds: GRACE })).events).toEqual([]);
    const summary = await flagStaleProperties(store, { now: at(20 + PMAX + GRACE + 1), graceSeconds: GRACE });
    expect(summary.events).toEqual([
      {
        deviceId: 'dev-b',
        kind: 'propertyStale',
        property: 'timezone',
        time: at(20 + PMAX + GRACE),
        reason: 'disconnected',
      },
    ]);
  });

  it('never flags an unsupported property', async () => {
    const store = new CosmosTwinStore(await freshContainer(), GRACE, attributes);
    await registered(store, 'dev-c', {
      memoryTotal: observed(0, { supported: false }),
      batteryLevel: observed(0),
    });
    const summary = await flagStaleProperties(store, { now: at(10 ** 6), graceSeconds: GRACE });
    expect(summary.events.map((e) => e.property)).toEqual(['batteryLevel']);
    const twin = (await store.get('dev-c')) as TwinDocument;
    expect(twin.deviceProperties.memoryTotal.stale).toBe(false);
    expect(twin.nextStaleAt).toBeUndefined();
    expect((await flagStaleProperties(store, { now: at(10 ** 7), graceSeconds: GRACE })).dueTwins).toBe(0);
  });

  it('is cleared by a notify and by a deep read, in the same write as the value', async () => {
    const store = new CosmosTwinStore(await freshContainer(), GRACE, attributes);
    await registered(store, 'dev-d', { batteryLevel: observed(0), timezone: observed(0) });
    await flagStaleProperties(store, { now: at(PMAX + GRACE + 1), graceSeconds: GRACE });
    expect((await store.get('dev-d'))?.staleProperties).toEqual(['batteryLevel', 'timezone']);

    const byNotify = await store.applyReadings('dev-d', [notify('batteryLevel', 55, 200)]);
    expect(byNotify.refreshed).toEqual(['batteryLevel']);
    const byDeepRead = await store.applyReadings('dev-d', [notify('timezone', 'UTC', 201, 'deepRead')]);
    expect(byDeepRead.refreshed).toEqual(['timezone']);

    const twin = (await store.get('dev-d')) as TwinDocument;
    expect(twin.deviceProperties.batteryLevel).toMatchObject({ value: 55, stale: false, staleSince: null });
    expect(twin.deviceProperties.timezone).toMatchObject({ value: 'UTC', source: 'deepRead', stale: false });
    expect(twin.staleProperties).toEqual([]);
    expect(twin.nextStaleAt).toBe(at(200 + PMAX + GRACE));
    expect((await flagStaleProperties(store, { now: at(199 + PMAX + GRACE), graceSeconds: GRACE })).dueTwins).toBe(0);
  });

  it('loses to a notify that lands between its read and its write', async () => {
    const container = await freshContainer();
    const store = new CosmosTwinStore(container, GRACE, attributes);
    await registered(store, 'dev-e', { batteryLevel: observed(0) });
    await store.applyReadings('dev-e', [notify('batteryLevel', 10, 5)]);
    const staleAt = 5 + PMAX + GRACE;

    /** The connector's notify, landing right after the sweep's read of the twin and before its write. */
    class NotifyDuringSweep extends CosmosTwinStore {
      armed = true;
      override async get(deviceId: string): Promise<TwinDocument | undefined> {
        const read = await super.get(deviceId);
        if (this.armed) {
          this.armed = false;
          await super.applyReadings(deviceId, [notify('batteryLevel', 11, staleAt + 0.5)]);
        }
        return read;
      }
    }
    const racing = new NotifyDuringSweep(container, GRACE);
    const summary = await flagStaleProperties(racing, { now: at(staleAt + 1), graceSeconds: GRACE });
    expect(racing.armed).toBe(false);
    expect(summary).toMatchObject({ dueTwins: 1, flaggedProperties: 0, failures: [], events: [] });

    const twin = (await store.get('dev-e')) as TwinDocument;
    expect(twin.deviceProperties.batteryLevel).toMatchObject({ value: 11, lastUpdatedTime: at(staleAt + 0.5) });
    expect(twin.deviceProperties.batteryLevel.stale).toBe(false);
    expect(twin.staleProperties).toEqual([]);
    // The notify's patch left the due time early; the sweep's second attempt corrected it.
    expect(twin.nextStaleAt).toBe(at(staleAt + 0.5 + PMAX + GRACE));
  });

  it('corrects an early due time without flagging, so the twin stops being found', async () => {
    const store = new CosmosTwinStore(await freshContainer(), GRACE, attributes);
    await registered(store, 'dev-f', { batteryLevel: observed(0) });
    await store.applyReadings('dev-f', [notify('batteryLevel', 1, 100)]); // one-request patch path
    expect((await store.get('dev-f'))?.nextStaleAt).toBe(at(PMAX + GRACE));

    const summary = await flagStaleProperties(store, { now: at(PMAX + GRACE + 1), graceSeconds: GRACE });
    expect(summary).toMatchObject({ dueTwins: 1, correctedTwins: 1, flaggedProperties: 0 });
    expect(summary.requests).toBe(QUERY_REQUESTS_PER_PAGE + 2);
    expect((await store.get('dev-f'))?.nextStaleAt).toBe(at(100 + PMAX + GRACE));
    expect((await flagStaleProperties(store, { now: at(PMAX + GRACE + 2), graceSeconds: GRACE })).dueTwins).toBe(0);
  });

  it('pages through every due twin, leaves the others alone, and counts its requests', async () => {
    const store = new CosmosTwinStore(await freshContainer(), GRACE, attributes);
    const dueIds = Array.from({ length: 25 }, (_, i) => `due-${String(i).padStart(2, '0')}`);
    for (const id of dueIds) await registered(store, id, { batteryLevel: observed(0) });
    for (const id of ['later-1', 'later-2']) await registered(store, id, { batteryLevel: observed(500) });
    const laterVersion = (await store.get('later-1'))?.version;

    const summary = await flagStaleProperties(store, { now: at(PMAX + GRACE + 1), graceSeconds: GRACE, pageSize: 10 });
    expect(summary).toMatchObject({ dueTwins: 25, flaggedTwins: 25, pages: 3, complete: true });
    // 3 query pages + per twin one read and one conditional replace.
    expect(summary.requests).toBe(3 * QUERY_REQUESTS_PER_PAGE + 2 * 25);
    expect(new Set(summary.events.map((e) => e.deviceId))).toEqual(new Set(dueIds));
    expect((await store.get('later-1'))?.version).toBe(laterVersion);
    expect((await store.get('later-1'))?.deviceProperties.batteryLevel.stale).toBe(false);
  });

  it('skips a twin deprovisioned mid-sweep and stops starting twins when its time budget is used up', async () => {
    const container = await freshContainer();
    const store = new CosmosTwinStore(container, GRACE, attributes);
    for (const id of ['gone', 'kept']) await registered(store, id, { batteryLevel: observed(0) });

    class DeprovisionDuringSweep extends CosmosTwinStore {
      override async update(...args: Parameters<CosmosTwinStore['update']>): Promise<TwinDocument | undefined> {
        if (args[0] === 'gone') await super.delete('gone');
        return super.update(...args);
      }
    }
    const summary = await flagStaleProperties(new DeprovisionDuringSweep(container, GRACE), {
      now: at(PMAX + GRACE + 1),
      graceSeconds: GRACE,
      concurrency: 1,
    });
    expect(summary).toMatchObject({ dueTwins: 2, vanishedTwins: 1, flaggedTwins: 1, failures: [] });

    await registered(store, 'late', { batteryLevel: observed(0) });
    let clock = 0;
    const outOfTime = await flagStaleProperties(store, {
      now: at(PMAX + GRACE + 1),
      graceSeconds: GRACE,
      timeBudgetMs: 10,
      elapsedClock: () => (clock += 6),
    });
    expect(outOfTime).toMatchObject({ complete: false, flaggedTwins: 0 });
    expect((await store.get('late'))?.deviceProperties.batteryLevel.stale).toBe(false);
  });
});
