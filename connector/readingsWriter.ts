/**
 * Coalesces readings into twin writes: readings of one device that arrive within `batchMs` of each other (or while
 * that device's previous write is running) are written together; of several readings of one property, only the
 * newest is written. Devices ready at the same time share one store call (`applyReadingsMany`, a bulk request in
 * Cosmos) of up to `MAX_DEVICES_PER_CALL` devices. At most one write per device is in flight (so a device's writes
 * never race each other) and at most `maxConcurrentWrites` store calls (bounding load on Cosmos and memory); under
 * load, devices queue and their batches grow, so requests per reading fall as the rate rises.
 *
 * A failed call is retried with backoff per device, merged with anything newer that arrived meanwhile; after
 * `MAX_WRITE_ATTEMPTS` the readings are dropped with an error line. `flush()` writes everything pending.
 *
 * A write that clears a stale flag (the store reports the property as `refreshed`) emits a propertyFresh event, after
 * the write succeeded.
 */
import { Reading } from '../shared/twin';
import { propertyFreshEvents } from '../shared/twinEvents';
import { TwinStore } from '../shared/twinStore';
import { EventSink, NO_EVENTS } from './eventQueue';
import { Logger, ThrottledWarnings } from './logger';

/** Where readings go: a `TwinStore`, or a `ThreadedReadingsSink` that runs one on a worker thread. */
export type ReadingsSink = Pick<TwinStore, 'applyReadingsMany'>;

export interface ReadingsWriterOptions {
  sink: ReadingsSink;
  /** Coalescing window, ms. */
  batchMs: number;
  /** Store calls in flight at once. */
  maxConcurrentWrites: number;
  /** propertyFresh events go here, for every property a write took out of stale (default: none). */
  events?: EventSink;
  /**
   * Called when the store refused a device's readings because their registration is not the twin's (see
   * `Reading.registrationId`) or the twin is gone: the registration is orphaned and should end.
   */
  onOrphaned?: (deviceId: string, registrationIds: readonly string[]) => void;
  log: Logger;
  now: () => number;
}

export interface ReadingsWriterStats {
  /** Readings handed to the writer. */
  received: number;
  /** Readings the store wrote (its `changed` lists). */
  persisted: number;
  /** Readings replaced by a newer one of the same property before they were written. */
  superseded: number;
  /** Readings the store refused as older than what the twin holds, or for a twin that no longer exists. */
  refused: number;
  /** Store calls (`applyReadingsMany`), the device writes they carried, and the Cosmos requests they made. */
  writes: number;
  deviceWrites: number;
  storeRequests: number;
  failedWrites: number;
  /** Readings given up after the last attempt. */
  lost: number;
}

/** Devices per store call (the Cosmos bulk limit). */
export const MAX_DEVICES_PER_CALL = 100;
const MAX_WRITE_ATTEMPTS = 8;
const FIRST_RETRY_DELAY_MS = 500;
const MAX_RETRY_DELAY_MS = 30_000;

interface DeviceBacklog {
  readings: Map<string, Reading>;
  attempts: number;
  notBefore: number;
}

export class ReadingsWriter {
  readonly stats: ReadingsWriterStats = {
    received: 0,
    persisted: 0,
    superseded: 0,
    refused: 0,
    writes: 0,
    deviceWrites: 0,
    storeRequests: 0,
    failedWrites: 0,
    lost: 0,
  };

  private readonly backlog = new Map<string, DeviceBacklog>();
  private readonly inFlight = new Set<string>();
  private readonly ready: string[] = [];
  private readonly queued = new Set<string>();
  private readonly warnings: ThrottledWarnings;
  private readonly events: EventSink;
  private timer?: NodeJS.Timeout;
  private timerDueAt = 0;
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: ReadingsWriterOptions) {
    this.warnings = new ThrottledWarnings(options.log, options.now);
    this.events = options.events ?? NO_EVENTS;
  }

  /** Readings waiting to be written. */
  get pending(): number {
    let count = 0;
    for (const device of this.backlog.values()) count += device.readings.size;
    return count;
  }

  add(deviceId: string, reading: Reading): void {
    this.stats.received++;
    let device = this.backlog.get(deviceId);
    if (!device) {
      device = { readings: new Map(), attempts: 0, notBefore: 0 };
      this.backlog.set(deviceId, device);
    }
    this.merge(device, reading);
    this.arm(this.options.batchMs);
  }

  /** Writes everything pending now (retry delays included) and resolves when nothing is pending or in flight. */
  async flush(): Promise<void> {
    for (const device of this.backlog.values()) device.notBefore = 0;
    while (this.backlog.size > 0 || this.active > 0) {
      this.collect(Number.POSITIVE_INFINITY);
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /** Flushes, then stops the timer. */
  async close(): Promise<void> {
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private merge(device: DeviceBacklog, reading: Reading): void {
    const previous = device.readings.get(reading.name);
    if (previous && previous.time >= reading.time) {
      this.stats.superseded++;
      return;
    }
    if (previous) this.stats.superseded++;
    device.readings.set(reading.name, reading);
  }

  /** Makes sure a collection runs within `delayMs` (one timer for all devices). */
  private arm(delayMs: number): void {
    const dueAt = this.options.now() + delayMs;
    if (this.timer && this.timerDueAt <= dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.collect(this.options.now());
    }, delayMs);
  }

  /** Queues every device with a backlog that is not in flight and not waiting for a retry at `now`. */
  private collect(now: number): void {
    let waiting = false;
    for (const [deviceId, device] of this.backlog) {
      if (this.inFlight.has(deviceId) || this.queued.has(deviceId)) continue;
      if (device.notBefore > now) {
        waiting = true;
        continue;
      }
      this.queued.add(deviceId);
      this.ready.push(deviceId);
    }
    if (waiting) this.arm(Math.max(this.options.batchMs, FIRST_RETRY_DELAY_MS));
    this.drain();
  }

  private drain(): void {
    while (this.active < this.options.maxConcurrentWrites && this.ready.length > 0) {
      const batch: { deviceId: string; device: DeviceBacklog }[] = [];
      while (batch.length < MAX_DEVICES_PER_CALL && this.ready.length > 0) {
        const deviceId = this.ready.shift() as string;
        this.queued.delete(deviceId);
        const device = this.backlog.get(deviceId);
        if (!device || this.inFlight.has(deviceId)) continue;
        this.backlog.delete(deviceId);
        this.inFlight.add(deviceId);
        batch.push({ deviceId, device });
      }
      if (batch.length > 0) void this.write(batch);
    }
    if (this.active === 0 && this.ready.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  private async write(batch: { deviceId: string; device: DeviceBacklog }[]): Promise<void> {
    this.active++;
    const writes = batch.map(({ deviceId, device }) => ({ deviceId, readings: [...device.readings.values()] }));
    try {
      this.stats.writes++;
      this.stats.deviceWrites += writes.length;
      const { results, requests } = await this.options.sink.applyReadingsMany(writes);
      this.stats.storeRequests += requests;
      results.forEach((result, i) => {
        this.stats.persisted += result.changed.length;
        this.stats.refused += writes[i].readings.length - result.changed.length;
        if (!result.found) {
          this.warnings.warn('readings dropped: the twin no longer exists', { deviceId: writes[i].deviceId });
        } else if (result.superseded) {
          this.warnings.warn('readings dropped: they came from a registration the twin no longer has', {
            deviceId: writes[i].deviceId,
          });
        }
        if (!result.found || result.superseded) this.orphaned(writes[i].deviceId, writes[i].readings);
        if (result.refreshed.length > 0) {
          this.events.emit(propertyFreshEvents(writes[i].deviceId, result.refreshed, writes[i].readings));
        }
      });
    } catch (error) {
      this.stats.failedWrites++;
      batch.forEach(({ deviceId, device }, i) => this.retryLater(deviceId, device, writes[i].readings, error));
    } finally {
      this.active--;
      const now = this.options.now();
      for (const { deviceId } of batch) {
        this.inFlight.delete(deviceId);
        const next = this.backlog.get(deviceId);
        // Readings that arrived during the write have waited long enough: they go next, behind those queued.
        if (next && next.notBefore <= now && !this.queued.has(deviceId)) {
          this.queued.add(deviceId);
          this.ready.push(deviceId);
        }
      }
      this.drain();
    }
  }

  private orphaned(deviceId: string, readings: readonly Reading[]): void {
    const ids = new Set<string>();
    for (const reading of readings) if (reading.registrationId !== undefined) ids.add(reading.registrationId);
    if (ids.size > 0) this.options.onOrphaned?.(deviceId, [...ids]);
  }

  private retryLater(deviceId: string, device: DeviceBacklog, readings: readonly Reading[], error: unknown): void {
    const attempts = device.attempts + 1;
    const reason = error instanceof Error ? error.message : String(error);
    if (attempts >= MAX_WRITE_ATTEMPTS) {
      this.stats.lost += readings.length;
      this.options.log.error('twin write failed for good; readings lost', {
        deviceId,
        readings: readings.length,
        attempts,
        error: reason,
      });
      return;
    }
    this.warnings.warn('twin write failed; will retry', { deviceId, attempts, error: reason });
    const merged = this.backlog.get(deviceId) ?? { readings: new Map<string, Reading>(), attempts: 0, notBefore: 0 };
    for (const reading of readings) {
      const newer = merged.readings.get(reading.name);
      if (!newer || newer.time < reading.time) merged.readings.set(reading.name, reading);
    }
    merged.attempts = attempts;
    const delay = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** (attempts - 1));
    merged.notBefore = this.options.now() + delay;
    this.backlog.set(deviceId, merged);
    this.arm(delay);
  }
}
