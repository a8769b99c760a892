/**
 * RFC 7641 §3.4 ordering of notifications within one observation.
 */
import { OBSERVE_FRESHNESS_SECONDS, OBSERVE_SEQUENCE_HALF } from './coapParameters';

export interface LastNotification {
  /** Observe option value, 0 to 2^24 - 1. */
  sequence: number;
  /** Arrival time, whole seconds on any local clock (the rule only compares differences). */
  arrivedAt: number;
}

/**
 * Whether a notification with `sequence` arriving at `arrivedAt` is newer than `last`: its number is ahead in
 * 24-bit modular order by less than 2^23, or more than 128 s passed since `last` arrived (the numbers may have
 * wrapped or the server restarted). An equal number is not newer (a duplicate).
 */
export function isNewerNotification(last: LastNotification, sequence: number, arrivedAt: number): boolean {
  const v1 = last.sequence;
  const v2 = sequence;
  return (
    (v1 < v2 && v2 - v1 < OBSERVE_SEQUENCE_HALF) ||
    (v1 > v2 && v1 - v2 > OBSERVE_SEQUENCE_HALF) ||
    arrivedAt > last.arrivedAt + OBSERVE_FRESHNESS_SECONDS
  );
}
