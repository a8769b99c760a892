/**
 * The staleness rule. Pure: no SDK imports, no clock (callers pass `now`).
 *
 * A property is stale when now > (lastUpdatedTime, or observedSince before its first value) + pmax + grace:
 * the device promised a notify at least every pmax seconds, and a notify may arrive up to `grace` seconds late
 * (CoAP's MAX_TRANSMIT_WAIT, 93 s by default). Unsupported properties (observe answered 4.04) are never stale.
 */
import { Connection, DeviceProperty, StaleReason, TwinDocument, staleAt, withDerivedFields } from './twin';

/** A property that turns stale: since when (its staleAt moment, not the moment the sweep saw it) and why. */
export interface StaleFlag {
  property: string;
  since: string;
  reason: StaleReason;
}

/** `missedNotify` while the device is connected (it should have notified), `disconnected` otherwise. */
export function staleReasonFor(connection: Connection): StaleReason {
  return connection.state === 'connected' ? 'missedNotify' : 'disconnected';
}

/** Whether `property` is past its staleAt at `now` (strictly after: at staleAt exactly it is still fresh). */
export function isPastStaleAt(property: DeviceProperty, now: string, graceSeconds: number): boolean {
  const at = staleAt(property, graceSeconds);
  return at !== undefined && Date.parse(now) > Date.parse(at);
}

/** The properties of `twin` that are stale at `now` and not flagged yet, in name order. */
export function propertiesTurningStale(twin: TwinDocument, now: string, graceSeconds: number): StaleFlag[] {
  const reason = staleReasonFor(twin.connection);
  const flags: StaleFlag[] = [];
  for (const name of Object.keys(twin.deviceProperties).sort()) {
    const property = twin.deviceProperties[name];
    if (property.stale || !isPastStaleAt(property, now, graceSeconds)) continue;
    flags.push({ property: name, since: staleAt(property, graceSeconds) as string, reason });
  }
  return flags;
}

/** The twin with `flags` set on its properties (derived fields not recomputed: the store does that). */
export function withStaleFlags(twin: TwinDocument, flags: readonly StaleFlag[]): TwinDocument {
  if (flags.length === 0) return twin;
  const deviceProperties = { ...twin.deviceProperties };
  for (const flag of flags) {
    deviceProperties[flag.property] = {
      ...deviceProperties[flag.property],
      stale: true,
      staleSince: flag.since,
      staleReason: flag.reason,
    };
  }
  return { ...twin, deviceProperties };
}

export type SweepDecision =
  | { action: 'flag'; twin: TwinDocument; flags: StaleFlag[] }
  /** Nothing turned stale but the stored derived fields are wrong (an early due time after a single-property patch). */
  | { action: 'correctDueTime'; twin: TwinDocument }
  | { action: 'none' };

/**
 * What the sweep does with one twin it found due at `now`: flag the properties that turned stale, or, when none
 * did, correct an early `nextStaleAt` so the twin stops being found until it is really due. A twin whose
 * `nextStaleAt` equals the recomputed one and has nothing stale is left alone (it is due exactly at `now`).
 */
export function decideSweep(twin: TwinDocument, now: string, graceSeconds: number): SweepDecision {
  const flags = propertiesTurningStale(twin, now, graceSeconds);
  if (flags.length > 0) return { action: 'flag', twin: withStaleFlags(twin, flags), flags };
  const derived = withDerivedFields(twin, graceSeconds);
  const dueTimeWrong = derived.nextStaleAt !== twin.nextStaleAt;
  const staleListWrong = derived.staleProperties.join() !== (twin.staleProperties ?? []).join();
  return dueTimeWrong || staleListWrong ? { action: 'correctDueTime', twin } : { action: 'none' };
}
