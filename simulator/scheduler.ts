import { Clock } from './clock';

/** A task waiting in a `Scheduler`; pass it to `cancel` to drop it. */
export interface ScheduledTask {
  readonly dueMs: number;
}

interface HeapTask extends ScheduledTask {
  dueMs: number;
  order: number;
  run: () => void;
  /** Position in the heap; -1 once run or cancelled. */
  index: number;
}

/**
 * One timer for a whole fleet: tasks wait in a binary min-heap ordered by due time, and the clock holds a
 * single timer armed for the earliest one. Scheduling and cancelling are O(log n) with no timer churn, so
 * 1,000 devices x 15 observations cost one wake-up per due instant, not one timer each.
 */
export class Scheduler {
  private readonly heap: HeapTask[] = [];
  private nextOrder = 0;
  private armedDueMs = Infinity;
  private cancelArmed: (() => void) | undefined;
  private stopped = false;
  /** True while due tasks run; the timer is armed once afterwards instead of per task added. */
  private firing = false;

  /** @param onError receives what a task throws; the scheduler carries on with the next task. */
  constructor(
    private readonly clock: Clock,
    private readonly onError: (error: unknown) => void,
  ) {}

  now(): number {
    return this.clock.now();
  }

  /** Runs `run` at clock time `dueMs` (or as soon as possible if that has passed). */
  at(dueMs: number, run: () => void): ScheduledTask {
    const task: HeapTask = { dueMs, order: this.nextOrder++, run, index: this.heap.length };
    if (this.stopped) {
      task.index = -1;
      return task;
    }
    this.heap.push(task);
    this.siftUp(task.index);
    if (!this.firing && dueMs < this.armedDueMs) this.arm();
    return task;
  }

  /** Runs `run` `delayMs` from now. */
  after(delayMs: number, run: () => void): ScheduledTask {
    return this.at(this.clock.now() + Math.max(0, delayMs), run);
  }

  /** Drops a task that has not run yet; harmless on one that ran or was cancelled. */
  cancel(task: ScheduledTask | undefined): void {
    const heapTask = task as HeapTask | undefined;
    if (!heapTask || heapTask.index < 0 || this.heap[heapTask.index] !== heapTask) return;
    this.removeAt(heapTask.index);
  }

  /** Number of tasks waiting. */
  get size(): number {
    return this.heap.length;
  }

  /** Drops every task and the clock timer; later `at` calls are ignored. */
  stop(): void {
    this.stopped = true;
    for (const task of this.heap) task.index = -1;
    this.heap.length = 0;
    this.cancelArmed?.();
    this.cancelArmed = undefined;
    this.armedDueMs = Infinity;
  }

  private arm(): void {
    this.cancelArmed?.();
    const top = this.heap[0];
    if (!top) {
      this.cancelArmed = undefined;
      this.armedDueMs = Infinity;
      return;
    }
    this.armedDueMs = top.dueMs;
    this.cancelArmed = this.clock.setTimer(() => this.fire(), top.dueMs - this.clock.now());
  }

  private fire(): void {
    this.cancelArmed = undefined;
    this.armedDueMs = Infinity;
    const now = this.clock.now();
    // Tasks added while this batch runs wait for the next wake-up, so a task that reschedules itself
    // at `now` cannot starve the event loop.
    const orderLimit = this.nextOrder;
    this.firing = true;
    while (!this.stopped) {
      const top = this.heap[0];
      if (!top || top.dueMs > now || top.order >= orderLimit) break;
      this.removeAt(0);
      try {
        top.run();
      } catch (error) {
        this.onError(error);
      }
    }
    this.firing = false;
    if (!this.stopped) this.arm();
  }

  private removeAt(index: number): void {
    const removed = this.heap[index];
    const last = this.heap.pop() as HeapTask;
    removed.index = -1;
    if (last !== removed) {
      this.heap[index] = last;
      last.index = index;
      this.siftDown(index);
      this.siftUp(last.index);
    }
  }

  private less(a: HeapTask, b: HeapTask): boolean {
    return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.order < b.order);
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(heap[index], heap[parent])) break;
      this.swap(index, parent);
      index = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.less(heap[left], heap[smallest])) smallest = left;
      if (right < heap.length && this.less(heap[right], heap[smallest])) smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }

  private swap(i: number, j: number): void {
    const heap = this.heap;
    const a = heap[i];
    heap[i] = heap[j];
    heap[j] = a;
    heap[i].index = i;
    heap[j].index = j;
  }
}
