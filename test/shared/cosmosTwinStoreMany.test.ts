/**
 * CosmosTwinStore.applyReadingsMany (bulk) against the local Cosmos server: the same rules as applyReadings,
 * per device, in two requests for many devices.
 */
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { Reading, newTwin, observedProperty } from '../../shared/twin';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { uniformObservation } from '../support/observation';

const attrs = uniformObservation({ pmin: 1, pmax: 60 });
const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
const reading = (name: string, value: string | number, time: string): Reading => ({
  name,
  value,
  time,
  source: 'notify',
});

describe('CosmosTwinStore.applyReadingsMany', () => {
  let cosmos: TestCosmos;
  let store: CosmosTwinStore;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosTwinStore(await openTwinsContainer(cosmos.client, 'store-many-test'), 93, attrs);
    for (const id of ['m1', 'm2', 'm3']) {
      await store.create(newTwin(id, {}, at(0)));
      await store.update(id, (t) => ({
        ...t,
        deviceProperties: {
          batteryLevel: observedProperty(attrs.device, at(0)),
          memoryFree: observedProperty(attrs.device, at(0)),
        },
      }));
    }
  });
  afterAll(() => cosmos.close());

  it('writes several devices in one bulk read and one bulk replace, and reports each outcome', async () => {
    await store.applyReadingsMany([
      { deviceId: 'm1', readings: [reading('batteryLevel', 10, at(20))] },
      { deviceId: 'm2', readings: [reading('batteryLevel', 10, at(20))] },
    ]);
    const { results, requests } = await store.applyReadingsMany([
      { deviceId: 'm1', readings: [reading('batteryLevel', 50, at(30)), reading('memoryFree', 7, at(30))] },
      { deviceId: 'm2', readings: [reading('batteryLevel', 99, at(10))] }, // older than what m2 holds
      { deviceId: 'missing', readings: [reading('batteryLevel', 1, at(30))] },
      { deviceId: 'm3', readings: [reading('timezone', 'UTC', at(30))] }, // no entry yet: fallback attributes
    ]);
    expect(requests).toBe(2);
    expect(results.map((r) => [r.found, r.changed])).toEqual([
      [true, ['batteryLevel', 'memoryFree']],
      [true, []],
      [false, []],
      [true, ['timezone']],
    ]);
    const m1 = await store.get('m1');
    expect(m1?.deviceProperties.batteryLevel).toMatchObject({ value: 50, lastUpdatedTime: at(30), source: 'notify' });
    expect((await store.get('m2'))?.deviceProperties.batteryLevel.value).toBe(10);
    expect((await store.get('m3'))?.deviceProperties.timezone).toMatchObject({ value: 'UTC', pmax: 60 });
  });

  it('clears a stale flag and says the property is fresh again', async () => {
    await store.update('m3', (t) => ({
      ...t,
      deviceProperties: {
        ...t.deviceProperties,
        memoryFree: { ...t.deviceProperties.memoryFree, stale: true, staleSince: at(40), staleReason: 'missedNotify' },
      },
    }));
    expect((await store.get('m3'))?.staleProperties).toEqual(['memoryFree']);
    const { results } = await store.applyReadingsMany([
      { deviceId: 'm3', readings: [reading('memoryFree', 5, at(50))] },
      { deviceId: 'm1', readings: [reading('memoryFree', 6, at(50))] },
    ]);
    expect(results[0]).toMatchObject({ found: true, changed: ['memoryFree'], refreshed: ['memoryFree'] });
    const m3 = await store.get('m3');
    expect(m3?.deviceProperties.memoryFree).toMatchObject({ value: 5, stale: false, staleSince: null });
    expect(m3?.staleProperties).toEqual([]);
  });
});
