/**
 * Time as the simulator sees it. Every delay in the simulator (lifetimes, pmin/pmax, CoAP retransmission,
 * value changes) goes through one `Clock`, so tests can drive time with a `ManualClock` instead of sleeping.
 */

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once, `delayMs` (>= 0) from now; the returned function cancels it. */
  setTimer(callback: () => void, delayMs: number): () => void;
}

/** The real clock: `Date.now` and `setTimeout`. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const timer = setTimeout(callback, Math.max(0, delayMs));
    return () => clearTimeout(timer);
  },
};

/** Bound on timer runs within one `ManualClock.advance`. */
const MAX_TIMERS_PER_ADVANCE = 1_000_000;

interface ManualTimer {
  dueMs: number;
  order: number;
  callback: () => void;
}

/**
 * A clock that moves only when told to. `advance` runs every timer that falls due, in due order, with
 * `now()` set to each timer's due time while it runs. Real I/O (UDP) still happens in real time: after
 * advancing, await what the network does.
 */
export class ManualClock implements Clock {
  private current: number;
  private timers: ManualTimer[] = [];
  private nextOrder = 0;

  /** @param startMs the initial `now()`, in milliseconds since the epoch. */
  constructor(startMs: number = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(callback: () => void, delayMs: number): () => void {
    const timer: ManualTimer = { dueMs: this.current + Math.max(0, delayMs), order: this.nextOrder++, callback };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  /**
   * Moves time forward by `ms` (>= 0), running the timers that fall due on the way. Throws if timers keep
   * re-arming without time passing (more than `MAX_TIMERS_PER_ADVANCE` runs), which would otherwise hang.
   */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0; got ${ms}`);
    const target = this.current + ms;
    for (let runs = 0; ; runs++) {
      if (runs > MAX_TIMERS_PER_ADVANCE) {
        throw new Error(
          `ManualClock.advance: more than ${MAX_TIMERS_PER_ADVANCE} timers ran; is one re-arming itself?`,
        );
      }
      const due = this.timers
        .filter((t) => t.dueMs <= target)
        .sort((a, b) => a.dueMs - b.dueMs || a.order - b.order)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.dueMs);
      due.callback();
    }
    this.current = target;
  }

  /** Number of timers waiting; a stopped simulator leaves none. */
  get pendingTimers(): number {
    return this.timers.length;
  }
}
