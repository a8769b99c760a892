import { Reading, applyReadings, newTwin, observedProperty, staleAt, withDerivedFields } from '../../shared/twin';
import { uniformObservation } from '../support/observation';

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();
const attrs = uniformObservation({ pmin: 5, pmax: 60 });
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
    twin.deviceProperties.batteryLevel = { ...observedProperty(attrs.device, at(0)), stale: true, staleSince: at(1) };
    const first = applyReadings(twin, [notify('batteryLevel', 80, at(10))], attrs, 93);
    expect(first.changed).toEqual(['batteryLevel']);
    twin = first.twin;
    expect(twin.deviceProperties.batteryLevel).toMatchObject({ value: 80, stale: false, staleSince: null });
    expect(twin.version).toBe(2);
    const older = applyReadings(twin, [notify('batteryLevel', 10, at(9))], attrs, 93);
    expect(older.changed).toEqual([]);
    expect(older.twin).toBe(twin);
  });

  it("moves a connected twin's lastActivityTime to the newest written reading, never back, and leaves a never-connected one", () => {
    const never = newTwin('d1', {}, at(0));
    expect(applyReadings(never, [notify('batteryLevel', 1, at(5))], attrs, 93).twin.connection).toEqual({
      state: 'never',
    });
    const connected = { ...never, connection: { state: 'connected' as const, since: at(0), lastActivityTime: at(20) } };
    const late = applyReadings(connected, [notify('batteryLevel', 1, at(5))], attrs, 93);
    expect(late.changed).toEqual(['batteryLevel']);
    expect(late.twin.connection.lastActivityTime).toBe(at(20));
    const both = applyReadings(
      late.twin,
      [notify('memoryFree', 2, at(30)), notify('batteryLevel', 3, at(25))],
      attrs,
      93,
    );
    expect(both.twin.connection.lastActivityTime).toBe(at(30));
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
