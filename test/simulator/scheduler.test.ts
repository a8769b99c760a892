import { ManualClock } from '../../simulator/clock';
import { Scheduler } from '../../simulator/scheduler';

describe('Scheduler (one clock timer for many tasks)', () => {
  test('runs tasks in due order, skips cancelled ones, and keeps a single timer armed', () => {
    const clock = new ManualClock(0);
    const errors: unknown[] = [];
    const scheduler = new Scheduler(clock, (error) => errors.push(error));
    const ran: string[] = [];
    scheduler.at(300, () => ran.push('c'));
    const b = scheduler.at(200, () => ran.push('b'));
    scheduler.at(100, () => ran.push('a'));
    scheduler.at(100, () => {
      throw new Error('boom');
    });
    scheduler.at(100, () => ran.push('a2'));
    scheduler.cancel(b);
    expect(clock.pendingTimers).toBe(1);
    expect(scheduler.size).toBe(4);

    clock.advance(99);
    expect(ran).toEqual([]);
    clock.advance(1);
    expect(ran).toEqual(['a', 'a2']);
    expect(errors).toEqual([new Error('boom')]);
    clock.advance(1_000);
    expect(ran).toEqual(['a', 'a2', 'c']);
    expect(clock.pendingTimers).toBe(0);
  });

  test('a task that reschedules itself for now waits for the next wake-up instead of looping', () => {
    let now = 0;
    const armed: (() => void)[] = [];
    const clock = { now: () => now, setTimer: (callback: () => void) => (armed.push(callback), () => undefined) };
    const scheduler = new Scheduler(clock, () => undefined);
    let runs = 0;
    const again = () => {
      runs++;
      scheduler.at(now, again);
    };
    scheduler.at(10, again);
    now = 10;
    armed.shift()?.();
    expect(runs).toBe(1);
    expect(armed).toHaveLength(1); // re-armed for the task it added
    armed.shift()?.();
    expect(runs).toBe(2);
    scheduler.stop();
  });

  test('keeps heap order through many random schedules and cancels', () => {
    const clock = new ManualClock(0);
    const scheduler = new Scheduler(clock, () => undefined);
    const due: number[] = [];
    const ran: number[] = [];
    let seed = 1;
    const random = () => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
    const tasks = Array.from({ length: 2_000 }, () => {
      const at = Math.floor(random() * 10_000);
      return { at, task: scheduler.at(at, () => ran.push(at)) };
    });
    for (const [index, { at, task }] of tasks.entries()) {
      if (index % 3 === 0) scheduler.cancel(task);
      else due.push(at);
    }
    clock.advance(10_000);
    expect(ran).toEqual(due.sort((a, b) => a - b));
  });
});
