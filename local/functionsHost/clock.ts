/** Time as the timer trigger sees it; tests inject a fake one. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Calls `callback` once after `delayMs` (negative means now); returns a function that cancels it. */
  setTimer(callback: () => void, delayMs: number): () => void;
}

/** Node timers hold at most 2^31 - 1 ms (about 24.8 days); longer waits are chained. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(callback, delayMs) {
    const dueAt = Date.now() + Math.max(0, delayMs);
    let handle: NodeJS.Timeout;
    const arm = (): void => {
      const remaining = dueAt - Date.now();
      if (remaining > MAX_TIMER_DELAY_MS) {
        handle = setTimeout(arm, MAX_TIMER_DELAY_MS);
      } else {
        handle = setTimeout(callback, Math.max(0, remaining));
      }
    };
    arm();
    return () => clearTimeout(handle);
  },
};
