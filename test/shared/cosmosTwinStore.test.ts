import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { isTwinError } from '../../shared/errors';
import { Reading, newTwin, observedProperty } from '../../shared/twin';
import { parseTwinQuery } from '../../shared/twinQuery';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { uniformObservation } from '../support/observation';

const GRACE = 93;
const attrs = uniformObservation({ pmin: 1, pmax: 60 });
const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
const reading = (name: string, value: string | number, time: string): Reading => ({
  name,
  value,
  time,
  source: 'notify',
});

describe('CosmosTwinStore against the local Cosmos server', () => {
  let cosmos: TestCosmos;
  let store: CosmosTwinStore;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosTwinStore(await openTwinsContainer(cosmos.client, 'store-test'), GRACE, attrs);
  });
  afterAll(() => cosmos.close());

  it('creates once, reads with an ETag, deletes', async () => {
    const first = await store.create(newTwin('dev-a', { tags: { site: 'x' } }, at(0)));
    expect(first.created).toBe(true);
    const again = await store.create(newTwin('dev-a', { tags: { site: 'other' } }, at(1)));
    expect(again.created).toBe(false);
    expect(again.twin.tags).toEqual({ site: 'x' });
    const read = await store.get('dev-a');
    expect(read?._etag).toMatch(/.+/);
    expect(read?.connection.state).toBe('never');
    expect(await store.delete('dev-a')).toBe(true);
    expect(await store.delete('dev-a')).toBe(false);
    expect(await store.get('dev-a')).toBeUndefined();
  });

  it('update bumps version, recomputes nextStaleAt, and honours ifMatch', async () => {
    await store.create(newTwin('dev-b', {}, at(0)));
    const before = await store.get('dev-b');
    const updated = await store.update('dev-b', (twin) => ({
      ...twin,
      deviceProperties: { batteryLevel: observedProperty(attrs.device, at(0)) },
    }));
    expect(updated?.version).toBe((before?.version ?? 0) + 1);
    expect(updated?.nextStaleAt).toBe(at(60 + GRACE));
    const lostRace = await store.update('dev-b', (t) => t, { ifMatch: before?._etag }).catch((e: unknown) => e);
    expect(isTwinError(lostRace, 'PreconditionFailed')).toBe(true);
    expect(await store.update('missing', (t) => t)).toBeUndefined();
  });

  it('applies a single reading in one request and never lets an older one overwrite it', async () => {
    await store.create(newTwin('dev-c', {}, at(0)));
    await store.update('dev-c', (t) => ({
      ...t,
      connection: { state: 'connected', since: at(0), lastActivityTime: at(0) },
      deviceProperties: { batteryLevel: observedProperty(attrs.device, at(0)) },
    }));
    const fresh = await store.applyReadings('dev-c', [reading('batteryLevel', 80, at(10))]);
    expect(fresh).toEqual({ found: true, changed: ['batteryLevel'], refreshed: [], requests: 1 });
    const older = await store.applyReadings('dev-c', [reading('batteryLevel', 99, at(5))]);
    expect(older.changed).toEqual([]);
    const twin = await store.get('dev-c');
    expect(twin?.deviceProperties.batteryLevel).toMatchObject({ value: 80, lastUpdatedTime: at(10), stale: false });
    expect(twin?.connection.lastActivityTime).toBe(at(10));
  });

  it("moves the connection's lastActivityTime forward with written readings, never back", async () => {
    await store.create(newTwin('dev-act', {}, at(0)));
    await store.update('dev-act', (t) => ({
      ...t,
      connection: { state: 'connected', since: at(0), lastActivityTime: at(20) },
      deviceProperties: { batteryLevel: observedProperty(attrs.device, at(0)) },
    }));
    // Newer than the property, older than the last Update: written (read + replace), activity kept.
    const late = await store.applyReadings('dev-act', [reading('batteryLevel', 50, at(10))]);
    expect(late).toMatchObject({ changed: ['batteryLevel'], requests: 3 });
    expect((await store.get('dev-act'))?.connection.lastActivityTime).toBe(at(20));
    const next = await store.applyReadings('dev-act', [reading('batteryLevel', 51, at(30))]);
    expect(next).toMatchObject({ changed: ['batteryLevel'], requests: 1 });
    const many = await store.applyReadingsMany([
      { deviceId: 'dev-act', readings: [reading('batteryLevel', 52, at(40)), reading('memoryFree', 9, at(41))] },
    ]);
    expect(many.results[0].changed.sort()).toEqual(['batteryLevel', 'memoryFree']);
    const twin = await store.get('dev-act');
    expect(twin?.connection).toMatchObject({ state: 'connected', lastActivityTime: at(41) });
    expect(twin?.deviceProperties.batteryLevel.value).toBe(52);
  });

  it('applies several readings at once, creating entries the twin lacked', async () => {
    await store.create(newTwin('dev-d', {}, at(0)));
    const result = await store.applyReadings('dev-d', [
      reading('batteryLevel', 70, at(20)),
      reading('timezone', 'UTC', at(20)),
      reading('batteryLevel', 71, at(21)),
    ]);
    expect(result.changed.sort()).toEqual(['batteryLevel', 'timezone']);
    const twin = await store.get('dev-d');
    expect(twin?.deviceProperties.batteryLevel.value).toBe(71);
    expect(twin?.nextStaleAt).toBe(at(20 + 60 + GRACE));
    expect(await store.applyReadings('gone', [reading('batteryLevel', 1, at(1))])).toMatchObject({
      found: false,
    });
  });

  it('keeps every value under concurrent writers', async () => {
    await store.create(newTwin('dev-e', {}, at(0)));
    const names = ['batteryLevel', 'memoryFree', 'timezone', 'utcOffset', 'currentTime', 'manufacturer'];
    await Promise.all(
      names.map((name, i) =>
        store.applyReadings('dev-e', [reading(name, i, at(30 + i)), reading('deviceType', i, at(30 + i))]),
      ),
    );
    const twin = await store.get('dev-e');
    expect(Object.keys(twin?.deviceProperties ?? {}).sort()).toEqual([...names, 'deviceType'].sort());
    expect(twin?.deviceProperties.deviceType.value).toBe(5);
  });

  it('pages through a tag-and-property query, treating SQL in values as data', async () => {
    const tricky = `plant'7" OR 1=1 --`;
    for (let i = 0; i < 7; i++) {
      await store.create(newTwin(`q-${i}`, { tags: { site: i < 5 ? tricky : 'other' } }, at(0)));
      await store.applyReadings(`q-${i}`, [reading('batteryLevel', i * 10, at(1))]);
    }
    const query = parseTwinQuery(
      new URLSearchParams([
        ['tag', `site:${tricky}`],
        ['where', 'deviceProperties.batteryLevel lt 40'],
      ]),
    );
    const seen: string[] = [];
    let continuation: string | undefined;
    let pages = 0;
    do {
      const page = await store.query(query, 2, continuation);
      seen.push(...page.twins.map((t) => t.deviceId));
      continuation = page.continuation;
      pages++;
    } while (continuation);
    expect(seen.sort()).toEqual(['q-0', 'q-1', 'q-2', 'q-3']);
    expect(pages).toBeGreaterThanOrEqual(2);
    const none = await store.query(parseTwinQuery(new URLSearchParams([['tag', "site:' OR 1=1 --"]])), 10);
    expect(none.twins).toEqual([]);
  });

  it('finds due twins only', async () => {
    await store.create(newTwin('due-1', {}, at(0)));
    await store.update('due-1', (t) => ({
      ...t,
      deviceProperties: { batteryLevel: observedProperty(attrs.device, at(0)) },
    }));
    const due = await store.findDue(at(60 + GRACE), 100);
    expect(due.twins.map((t) => t.deviceId)).toContain('due-1');
    const notYet = await store.findDue(at(60 + GRACE - 1), 100);
    expect(notYet.twins.map((t) => t.deviceId)).not.toContain('due-1');
  });
});
