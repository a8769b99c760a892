import { Reading, applyReadings, newTwin, observedProperty, staleAt, withDerivedFields } from '../../shared/twin';

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
const attrs = () => ({ pmin: 5, pmax: 60 });
const notify = (name: string, value: number | string, time: string): Reading => ({
  name,
  value,
  time,
  source: 'notify',
});

describe('twin rules', () => {
  it('starts a twin as never connected, with no device properties', () => {
    const twin = newTwin('d1', { tags: { site: 'a', gone: null } }, at(0));
    expect(twin).toMatchObject({ id: 'd1', deviceId: 'd1', version: 1, connection: { state: 'never' } });
    expect(twin.tags).toEqual({ site: 'a' });
    expect(twin.deviceProperties).toEqual({});
  });

  it('applies newer readings, ignores older ones, and clears the stale flag', () => {
    let twin = newTwin('d1', {}, at(0));
    twin.deviceProperties.batteryLevel = { ...observedProperty(attrs(), at(0)), stale: true, staleSince: at(1) };
    const first = applyReadings(twin, [notify('batteryLevel', 80, at(10))], attrs, 93);
    expect(first.changed).toEqual(['batteryLevel']);
    twin = first.twin;
    expect(twin.deviceProperties.batteryLevel).toMatchObject({ value: 80, stale: false, staleSince: null });
    expect(twin.version).toBe(2);
    const older = applyReadings(twin, [notify('batteryLevel', 10, at(9))], attrs, 93);
    expect(older.changed).toEqual([]);
    expect(older.twin).toBe(twin);
  });

  it('computes nextStaleAt as the earliest lastUpdated + pmax + grace, skipping unsupported and stale', () => {
    const twin = newTwin('d1', {}, at(0));
    twin.deviceProperties = {
      a: { ...observedProperty({ pmin: 1, pmax: 100 }, at(0)), lastUpdatedTime: at(50) },
      b: { ...observedProperty({ pmin: 1, pmax: 30 }, at(0)) },
      c: { ...observedProperty({ pmin: 1, pmax: 1 }, at(0)), supported: false },
      d: { ...observedProperty({ pmin: 1, pmax: 1 }, at(0)), stale: true },
    };
    const derived = withDerivedFields(twin, 10);
    expect(derived.nextStaleAt).toBe(at(40));
    expect(derived.staleProperties).toEqual(['d']);
    expect(staleAt(twin.deviceProperties.c, 10)).toBeUndefined();
  });
});
