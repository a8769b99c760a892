import { decideSweep, isPastStaleAt, propertiesTurningStale, withStaleFlags } from '../../shared/staleness';
import { DeviceProperty, TwinDocument, applyReadings, newTwin, withDerivedFields } from '../../shared/twin';
import { uniformObservation } from '../support/observation';

const GRACE = 93;
const PMAX = 60;
const T0 = Date.UTC(2026, 0, 1);
/** The ISO time `seconds` (may be fractional) after T0. */
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

function property(init: Partial<DeviceProperty> = {}): DeviceProperty {
  return { pmin: 1, pmax: PMAX, supported: true, stale: false, observedSince: at(0), ...init };
}

function twin(
  deviceProperties: Record<string, DeviceProperty>,
  state: 'connected' | 'disconnected' = 'connected',
): TwinDocument {
  const base = newTwin('dev-1', {}, at(0));
  return withDerivedFields({ ...base, connection: { state, since: at(0) }, deviceProperties }, GRACE);
}

describe('the staleness rule', () => {
  it('flags a property exactly after lastUpdatedTime + pmax + grace, and not at or before that moment', () => {
    const p = property({ value: 80, lastUpdatedTime: at(10) });
    expect(isPastStaleAt(p, at(10 + PMAX + GRACE - 1), GRACE)).toBe(false);
    expect(isPastStaleAt(p, at(10 + PMAX + GRACE), GRACE)).toBe(false);
    expect(isPastStaleAt(p, at(10 + PMAX + GRACE + 0.001), GRACE)).toBe(true);
  });

  it('counts a property that never got a value from when observation began', () => {
    const t = twin({ batteryLevel: property({ observedSince: at(5) }) });
    expect(propertiesTurningStale(t, at(5 + PMAX + GRACE), GRACE)).toEqual([]);
    expect(propertiesTurningStale(t, at(5 + PMAX + GRACE + 1), GRACE)).toEqual([
      { property: 'batteryLevel', since: at(5 + PMAX + GRACE), reason: 'missedNotify' },
    ]);
  });

  it('never flags an unsupported property, however old', () => {
    const t = twin({ memoryTotal: property({ supported: false }) });
    expect(propertiesTurningStale(t, at(10 ** 7), GRACE)).toEqual([]);
    expect(decideSweep(t, at(10 ** 7), GRACE)).toEqual({ action: 'none' });
  });

  it('gives the reason disconnected when the device is not connected, and flags each property once', () => {
    const t = twin(
      {
        batteryLevel: property({ value: 1, lastUpdatedTime: at(0) }),
        timezone: property({ value: 'UTC', lastUpdatedTime: at(100) }),
      },
      'disconnected',
    );
    const flags = propertiesTurningStale(t, at(PMAX + GRACE + 1), GRACE);
    expect(flags).toEqual([{ property: 'batteryLevel', since: at(PMAX + GRACE), reason: 'disconnected' }]);
    const flagged = withDerivedFields(withStaleFlags(t, flags), GRACE);
    expect(flagged.deviceProperties.batteryLevel).toMatchObject({
      value: 1,
      stale: true,
      staleSince: at(PMAX + GRACE),
      staleReason: 'disconnected',
    });
    expect(flagged.staleProperties).toEqual(['batteryLevel']);
    expect(flagged.nextStaleAt).toBe(at(100 + PMAX + GRACE));
    expect(propertiesTurningStale(flagged, at(PMAX + GRACE + 2), GRACE)).toEqual([]);
  });

  it('is cleared by the next reading, which reports the property as fresh again', () => {
    const t = twin({ batteryLevel: property({ value: 1, lastUpdatedTime: at(0) }) });
    const flagged = withDerivedFields(withStaleFlags(t, propertiesTurningStale(t, at(PMAX + GRACE + 1), GRACE)), GRACE);
    const notified = applyReadings(
      flagged,
      [{ name: 'batteryLevel', value: 2, time: at(PMAX + GRACE + 5), source: 'notify' }],
      uniformObservation({ pmin: 1, pmax: PMAX }),
      GRACE,
    );
    expect(notified.refreshed).toEqual(['batteryLevel']);
    expect(notified.twin.deviceProperties.batteryLevel).toMatchObject({ stale: false, staleSince: null });
    expect(notified.twin.staleProperties).toEqual([]);
    expect(decideSweep(notified.twin, at(PMAX + GRACE + 6), GRACE)).toEqual({ action: 'none' });
  });

  it('corrects an early due time when nothing is stale yet, and leaves a right one alone', () => {
    const t = twin({ batteryLevel: property({ value: 1, lastUpdatedTime: at(50) }) });
    const early = { ...t, nextStaleAt: at(PMAX + GRACE) };
    expect(decideSweep(early, at(PMAX + GRACE + 1), GRACE)).toEqual({ action: 'correctDueTime', twin: early });
    expect(decideSweep(t, at(PMAX + GRACE + 1), GRACE)).toEqual({ action: 'none' });
  });
});
