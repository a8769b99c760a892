import type { Clock } from '../../../../local/functionsHost/clock';
import { createHostLogger } from '../../../../local/functionsHost/hostLogger';
import { parseTimerSchedule } from '../../../../local/functionsHost/timer/timerSchedule';
import {
  NEVER_RAN,
  TimerTrigger,
  type ScheduleStatus,
  type ScheduleStatusStore,
  type SingletonLock,
  type TimerInfoPayload,
  type TimerTriggerOptions,
} from '../../../../local/functionsHost/timer/timerTrigger';

/** A clock that only moves when the test advances it; due timers fire in order, with async work settled between. */
class FakeClock implements Clock {
  private timers: { due: number; callback: () => void; seq: number }[] = [];
  private seq = 0;

  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  setTimer(callback: () => void, delayMs: number): () => void {
    const timer = { due: this.time + Math.max(0, delayMs), callback, seq: this.seq++ };
    this.timers.push(timer);
    return () => {
      this.timers = this.timers.filter((t) => t !== timer);
    };
  }

  async advanceTo(iso: string): Promise<void> {
    const target = Date.parse(iso);
    await settle();
    for (;;) {
      const next = this.timers.filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) {
        break;
      }
      this.timers = this.timers.filter((t) => t !== next);
      this.time = Math.max(this.time, next.due);
      next.callback();
      await settle();
    }
    this.time = target;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let round = 0; round < 10; round++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Lock state shared by the "hosts" of one test, like the lease blob. */
class SharedLockState {
  holder: string | undefined;
}

class MemoryLock implements SingletonLock {
  constructor(
    private readonly state: SharedLockState,
    private readonly id: string,
  ) {}

  async tryAcquire(): Promise<boolean> {
    if (this.state.holder === undefined || this.state.holder === this.id) {
      this.state.holder = this.id;
      return true;
    }
    return false;
  }

  async renew(): Promise<boolean> {
    return this.state.holder === this.id;
  }

  async release(): Promise<void> {
    if (this.state.holder === this.id) {
      this.state.holder = undefined;
    }
  }
}

class MemoryStatusStore implements ScheduleStatusStore {
  constructor(public status?: ScheduleStatus) {}

  async read(): Promise<ScheduleStatus | undefined> {
    return this.status;
  }

  async write(status: ScheduleStatus): Promise<void> {
    this.status = status;
  }
}

interface Invocation {
  host: string;
  at: string;
  info: TimerInfoPayload;
}

function createTimer(
  clock: FakeClock,
  invocations: Invocation[],
  overrides: Partial<TimerTriggerOptions> & {
    host?: string;
    lockState?: SharedLockState;
    store?: MemoryStatusStore;
    invoke?: (info: TimerInfoPayload) => Promise<unknown>;
  } = {},
): TimerTrigger {
  const host = overrides.host ?? 'host-a';
  return new TimerTrigger(
    {
      functionName: 'sweep',
      schedule: overrides.schedule ?? parseTimerSchedule('0 * * * * *'),
      runOnStartup: overrides.runOnStartup ?? false,
      useMonitor: overrides.useMonitor ?? true,
      lockRenewIntervalMs: overrides.lockRenewIntervalMs ?? 7_500,
      lockPollIntervalMs: overrides.lockPollIntervalMs ?? 10_000,
    },
    {
      clock,
      lock: new MemoryLock(overrides.lockState ?? new SharedLockState(), host),
      statusStore: overrides.store ?? new MemoryStatusStore(),
      logger: createHostLogger(() => undefined),
      invoke: async (info) => {
        invocations.push({ host, at: new Date(clock.now()).toISOString(), info });
        return overrides.invoke?.(info);
      },
    },
  );
}

describe('TimerTrigger (injected clock)', () => {
  it('fires at each occurrence, not before, with the schedule status the runtime passes', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:30Z'));
    const invocations: Invocation[] = [];
    const store = new MemoryStatusStore();
    const timer = createTimer(clock, invocations, { store });
    await timer.start();

    await clock.advanceTo('2026-01-01T10:00:59.999Z');
    expect(invocations).toHaveLength(0);
    await clock.advanceTo('2026-01-01T10:01:00Z');
    await clock.advanceTo('2026-01-01T10:02:00Z');
    expect(invocations.map((i) => i.at)).toEqual(['2026-01-01T10:01:00.000Z', '2026-01-01T10:02:00.000Z']);
    expect(invocations[0].info).toEqual({
      Schedule: { AdjustForDST: true },
      ScheduleStatus: { Last: NEVER_RAN, Next: '2026-01-01T10:01:00.000Z', LastUpdated: '2026-01-01T10:00:30.000Z' },
      IsPastDue: false,
    });
    expect(invocations[1].info.ScheduleStatus).toEqual({
      Last: '2026-01-01T10:01:00.000Z',
      Next: '2026-01-01T10:02:00.000Z',
      LastUpdated: '2026-01-01T10:01:00.000Z',
    });
    expect(store.status).toEqual({
      last: '2026-01-01T10:02:00.000Z',
      next: '2026-01-01T10:03:00.000Z',
      lastUpdated: '2026-01-01T10:02:00.000Z',
    });
    await timer.close();
  });

  it('invokes at once with isPastDue when an occurrence was missed while no host ran', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:30Z'));
    const invocations: Invocation[] = [];
    const store = new MemoryStatusStore({
      last: '2026-01-01T09:54:00.000Z',
      next: '2026-01-01T09:55:00.000Z',
      lastUpdated: '2026-01-01T09:54:00.000Z',
    });
    const timer = createTimer(clock, invocations, { store });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:31Z');
    expect(invocations).toHaveLength(1);
    expect(invocations[0].info.IsPastDue).toBe(true);
    expect(invocations[0].info.ScheduleStatus?.Next).toBe('2026-01-01T09:55:00.000Z');
    await clock.advanceTo('2026-01-01T10:01:00Z');
    expect(invocations.map((i) => i.info.IsPastDue)).toEqual([true, false]);
    await timer.close();
  });

  it('is not past due when the recorded next occurrence is still ahead', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:30Z'));
    const invocations: Invocation[] = [];
    const store = new MemoryStatusStore({
      last: '2026-01-01T10:00:00.000Z',
      next: '2026-01-01T10:01:00.000Z',
      lastUpdated: '2026-01-01T10:00:00.000Z',
    });
    const timer = createTimer(clock, invocations, { store });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:59Z');
    expect(invocations).toHaveLength(0);
    await timer.close();
  });

  it('runs on startup when runOnStartup is set, without isPastDue', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:30Z'));
    const invocations: Invocation[] = [];
    const timer = createTimer(clock, invocations, { runOnStartup: true });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:30.001Z');
    expect(invocations).toHaveLength(1);
    expect(invocations[0].info.IsPastDue).toBe(false);
    expect(invocations[0].at).toBe('2026-01-01T10:00:30.000Z');
    await timer.close();
  });

  it('passes a null schedule status and stores nothing without the monitor', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:00Z'));
    const invocations: Invocation[] = [];
    const store = new MemoryStatusStore();
    const timer = createTimer(clock, invocations, {
      store,
      useMonitor: false,
      schedule: parseTimerSchedule('*/5 * * * * *'),
    });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:10Z');
    expect(invocations.map((i) => i.at)).toEqual(['2026-01-01T10:00:05.000Z', '2026-01-01T10:00:10.000Z']);
    expect(invocations[0].info.ScheduleStatus).toBeNull();
    expect(store.status).toBeUndefined();
    await timer.close();
  });

  it('keeps the schedule after a failed invocation', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:00Z'));
    const invocations: Invocation[] = [];
    const timer = createTimer(clock, invocations, {
      schedule: parseTimerSchedule('*/5 * * * * *'),
      invoke: async () => {
        throw new Error('handler failed');
      },
    });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:15Z');
    expect(invocations).toHaveLength(3);
    await timer.close();
  });

  it('never overlaps invocations: the next occurrence is the first after the slow one ends', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:00Z'));
    const invocations: Invocation[] = [];
    let finishSlow: () => void = () => undefined;
    let calls = 0;
    const timer = createTimer(clock, invocations, {
      schedule: parseTimerSchedule('* * * * * *'),
      useMonitor: false,
      invoke: () => {
        calls++;
        return calls === 1 ? new Promise<void>((resolve) => (finishSlow = resolve)) : Promise.resolve();
      },
    });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:05.500Z');
    expect(invocations.map((i) => i.at)).toEqual(['2026-01-01T10:00:01.000Z']);
    finishSlow();
    await clock.advanceTo('2026-01-01T10:00:07Z');
    expect(invocations.map((i) => i.at)).toEqual([
      '2026-01-01T10:00:01.000Z',
      '2026-01-01T10:00:06.000Z',
      '2026-01-01T10:00:07.000Z',
    ]);
    await timer.close();
  });

  it('runs on one host only; another takes over after the holder closes', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:00Z'));
    const invocations: Invocation[] = [];
    const lockState = new SharedLockState();
    const store = new MemoryStatusStore();
    const options = { lockState, store, schedule: parseTimerSchedule('*/10 * * * * *'), lockPollIntervalMs: 5_000 };
    const hostA = createTimer(clock, invocations, { ...options, host: 'host-a' });
    const hostB = createTimer(clock, invocations, { ...options, host: 'host-b' });
    await hostA.start();
    await settle();
    await hostB.start();
    await settle();
    expect([hostA.isActive, hostB.isActive]).toEqual([true, false]);

    await clock.advanceTo('2026-01-01T10:00:30Z');
    expect(invocations.map((i) => `${i.host}@${i.at.slice(14, 19)}`)).toEqual([
      'host-a@00:10',
      'host-a@00:20',
      'host-a@00:30',
    ]);

    await hostA.close();
    expect(lockState.holder).toBeUndefined();
    await clock.advanceTo('2026-01-01T10:00:50Z');
    expect(hostB.isActive).toBe(true);
    expect(invocations.map((i) => `${i.host}@${i.at.slice(14, 19)}`)).toEqual([
      'host-a@00:10',
      'host-a@00:20',
      'host-a@00:30',
      'host-b@00:40',
      'host-b@00:50',
    ]);
    await hostB.close();
  });

  it('pauses its schedule when the lock is lost and resumes (catching up once) when it gets it back', async () => {
    const clock = new FakeClock(Date.parse('2026-01-01T10:00:00Z'));
    const invocations: Invocation[] = [];
    const lockState = new SharedLockState();
    const timer = createTimer(clock, invocations, {
      lockState,
      schedule: parseTimerSchedule('*/10 * * * * *'),
      lockRenewIntervalMs: 5_000,
      lockPollIntervalMs: 5_000,
    });
    await timer.start();
    await clock.advanceTo('2026-01-01T10:00:10Z');
    lockState.holder = 'someone-else';
    await clock.advanceTo('2026-01-01T10:00:40Z');
    expect(timer.isActive).toBe(false);
    expect(invocations.map((i) => i.at.slice(14, 19))).toEqual(['00:10']);
    lockState.holder = undefined;
    await clock.advanceTo('2026-01-01T10:01:00Z');
    expect(timer.isActive).toBe(true);
    // On taking the lock back at 00:45 the recorded next occurrence (00:20) has passed: one past-due run, then the schedule.
    expect(invocations.map((i) => `${i.at.slice(14, 19)}${i.info.IsPastDue ? ' pastDue' : ''}`)).toEqual([
      '00:10',
      '00:45 pastDue',
      '00:50',
      '01:00',
    ]);
    await timer.close();
  });
});
