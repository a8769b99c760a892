import type { Clock } from '../clock';
import { describeError, describeErrorBriefly, type HostLogger } from '../hostLogger';
import type { TriggerListener } from '../triggerListener';
import type { TimerSchedule } from './timerSchedule';

/** A lock that at most one host holds at a time (the runtime's singleton listener lock). */
export interface SingletonLock {
  /** Tries to take the lock; true when this host holds it now. */
  tryAcquire(): Promise<boolean>;
  /** Extends the hold; false when the lock was lost to another host. */
  renew(): Promise<boolean>;
  /** Gives the lock up if held; never throws for a lock that is already gone. */
  release(): Promise<void>;
}

/** The runtime's persisted schedule status, ISO 8601 UTC times. */
export interface ScheduleStatus {
  last: string;
  next: string;
  lastUpdated: string;
}

export interface ScheduleStatusStore {
  read(): Promise<ScheduleStatus | undefined>;
  write(status: ScheduleStatus): Promise<void>;
}

/** The timer input as the Functions host sends it (PascalCase; `@azure/functions` camel-cases it for the handler). */
export interface TimerInfoPayload {
  Schedule: { AdjustForDST: boolean };
  ScheduleStatus: { Last: string; Next: string; LastUpdated: string } | null;
  IsPastDue: boolean;
}

/** `ScheduleStatus.Last` before the first run: .NET's `DateTime.MinValue`, as the runtime reports it. */
export const NEVER_RAN = new Date('0001-01-01T00:00:00Z').toISOString();

export interface TimerTriggerOptions {
  functionName: string;
  schedule: TimerSchedule;
  runOnStartup: boolean;
  /** Persist the schedule status and detect missed occurrences (past due) at start. */
  useMonitor: boolean;
  /** Renew the listener lock this often (ms); less than the lease period. */
  lockRenewIntervalMs: number;
  /** A host without the listener lock tries to take it this often (ms). */
  lockPollIntervalMs: number;
}

export interface TimerTriggerDependencies {
  clock: Clock;
  lock: SingletonLock;
  statusStore: ScheduleStatusStore;
  /** Runs the function once; rejections are logged and do not stop the schedule. */
  invoke(timerInfo: TimerInfoPayload): Promise<unknown>;
  logger: HostLogger;
}

/**
 * One timer-triggered function, scheduled only on the host that holds the function's singleton listener lock, as in
 * the Functions runtime: the other hosts poll for the lock and take over when it is released or expires. On taking the
 * lock it reads the persisted status: an occurrence missed while no host ran is invoked at once with `IsPastDue`;
 * `runOnStartup` invokes at once too. Invocations of one function never overlap: the next occurrence is computed when
 * the previous invocation ends.
 */
export class TimerTrigger implements TriggerListener {
  #stopped = false;
  #holdsLock = false;
  #cancelPoll?: () => void;
  #cancelRenew?: () => void;
  #cancelOccurrence?: () => void;
  #status?: ScheduleStatus;
  #running: Promise<void> = Promise.resolve();
  #acquiring: Promise<void> = Promise.resolve();
  /** Bumped whenever the lock is lost, so work scheduled under an older hold is dropped. */
  #holdGeneration = 0;

  constructor(
    private readonly options: TimerTriggerOptions,
    private readonly deps: TimerTriggerDependencies,
  ) {}

  /** True while this host holds the listener lock and runs the schedule. */
  get isActive(): boolean {
    return this.#holdsLock && !this.#stopped;
  }

  /** Returns at once: taking the lock (and retrying while storage is unreachable) happens in the background. */
  async start(): Promise<void> {
    this.#acquiring = this.attemptAcquire();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelPoll?.();
    this.#cancelRenew?.();
    this.#cancelOccurrence?.();
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#acquiring;
    await this.#running;
    if (this.#holdsLock) {
      this.#holdsLock = false;
      try {
        await this.deps.lock.release();
      } catch (error) {
        this.deps.logger.warn(
          `Timer '${this.options.functionName}': releasing the listener lock failed: ${describeErrorBriefly(error)}`,
        );
      }
    }
  }

  describe(): string[] {
    const flags = [this.options.runOnStartup ? 'runOnStartup' : '', this.options.useMonitor ? 'monitored' : '']
      .filter((flag) => flag !== '')
      .join(', ');
    return [
      `${this.options.functionName}: timerTrigger "${this.options.schedule.expression}"${flags ? ` (${flags})` : ''}`,
    ];
  }

  private async attemptAcquire(): Promise<void> {
    if (this.#stopped) {
      return;
    }
    let acquired = false;
    try {
      acquired = await this.deps.lock.tryAcquire();
    } catch (error) {
      this.deps.logger.warn(
        `Timer '${this.options.functionName}': could not reach the lock store, retrying: ${describeErrorBriefly(error)}`,
      );
    }
    if (this.#stopped) {
      if (acquired) {
        await this.deps.lock.release().catch(() => undefined);
      }
      return;
    }
    if (!acquired) {
      this.#cancelPoll = this.deps.clock.setTimer(() => void this.attemptAcquire(), this.options.lockPollIntervalMs);
      return;
    }
    this.#holdsLock = true;
    this.deps.logger.info(`Timer '${this.options.functionName}': this host holds the listener lock.`);
    this.scheduleRenewal();
    const generation = this.#holdGeneration;
    this.enqueue(() => this.beginSchedule(generation));
  }

  private scheduleRenewal(): void {
    this.#cancelRenew = this.deps.clock.setTimer(() => void this.renew(), this.options.lockRenewIntervalMs);
  }

  private async renew(): Promise<void> {
    if (this.#stopped || !this.#holdsLock) {
      return;
    }
    let held = false;
    try {
      held = await this.deps.lock.renew();
    } catch (error) {
      this.deps.logger.warn(
        `Timer '${this.options.functionName}': renewing the listener lock failed: ${describeErrorBriefly(error)}`,
      );
    }
    if (this.#stopped) {
      return;
    }
    if (held) {
      this.scheduleRenewal();
      return;
    }
    this.deps.logger.warn(`Timer '${this.options.functionName}': lost the listener lock; pausing the schedule.`);
    this.#holdsLock = false;
    this.#holdGeneration++;
    this.#cancelOccurrence?.();
    this.#cancelPoll = this.deps.clock.setTimer(() => void this.attemptAcquire(), this.options.lockPollIntervalMs);
  }

  /** Serialises the schedule's steps so invocations never overlap and close() can wait for the last one. */
  private enqueue(step: () => Promise<void>): void {
    this.#running = this.#running.then(step).catch((error: unknown) => {
      this.deps.logger.error(`Timer '${this.options.functionName}': ${describeError(error)}`);
    });
  }

  private isCurrent(generation: number): boolean {
    return !this.#stopped && this.#holdsLock && generation === this.#holdGeneration;
  }

  private async beginSchedule(generation: number): Promise<void> {
    const { schedule, useMonitor, runOnStartup } = this.options;
    let isPastDue = false;
    if (useMonitor) {
      const now = this.deps.clock.now();
      this.#status = await this.readStatus();
      if (!this.#status) {
        this.#status = { last: NEVER_RAN, next: iso(schedule.next(now)), lastUpdated: iso(now) };
        await this.writeStatus(this.#status);
      } else {
        isPastDue = Date.parse(this.#status.next) < now;
      }
    }
    if (!this.isCurrent(generation)) {
      return;
    }
    if (isPastDue || runOnStartup) {
      await this.fire(isPastDue, this.deps.clock.now());
    }
    this.armNextOccurrence(generation, this.deps.clock.now());
  }

  private armNextOccurrence(generation: number, afterMs: number): void {
    if (!this.isCurrent(generation)) {
      return;
    }
    const occurrence = this.options.schedule.next(afterMs);
    const onDue = (): void => {
      if (this.deps.clock.now() < occurrence) {
        this.#cancelOccurrence = this.deps.clock.setTimer(onDue, occurrence - this.deps.clock.now());
        return;
      }
      this.enqueue(async () => {
        if (!this.isCurrent(generation)) {
          return;
        }
        await this.fire(false, occurrence);
        this.armNextOccurrence(generation, Math.max(occurrence, this.deps.clock.now()));
      });
    };
    this.#cancelOccurrence = this.deps.clock.setTimer(onDue, occurrence - this.deps.clock.now());
  }

  private async fire(isPastDue: boolean, occurrence: number): Promise<void> {
    const status = this.#status;
    const timerInfo: TimerInfoPayload = {
      Schedule: { AdjustForDST: true },
      ScheduleStatus: status ? { Last: status.last, Next: status.next, LastUpdated: status.lastUpdated } : null,
      IsPastDue: isPastDue,
    };
    try {
      await this.deps.invoke(timerInfo);
    } catch {
      // The invoker has logged the failure with its invocation id; the schedule goes on, as in the runtime.
    }
    if (this.options.useMonitor) {
      const now = this.deps.clock.now();
      this.#status = { last: iso(occurrence), next: iso(this.options.schedule.next(now)), lastUpdated: iso(now) };
      await this.writeStatus(this.#status);
    }
  }

  private async readStatus(): Promise<ScheduleStatus | undefined> {
    try {
      return await this.deps.statusStore.read();
    } catch (error) {
      this.deps.logger.warn(
        `Timer '${this.options.functionName}': reading the schedule status failed: ${describeErrorBriefly(error)}`,
      );
      return undefined;
    }
  }

  private async writeStatus(status: ScheduleStatus): Promise<void> {
    try {
      await this.deps.statusStore.write(status);
    } catch (error) {
      this.deps.logger.warn(
        `Timer '${this.options.functionName}': writing the schedule status failed: ${describeErrorBriefly(error)}`,
      );
    }
  }
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
