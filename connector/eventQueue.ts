/**
 * Twin events from the connector (deviceConnected, deviceDisconnected, notify-driven propertyFresh), published in the
 * background so that neither a registration reply nor a twin write waits for Service Bus.
 *
 * Events are sent in the order they were emitted, by one send loop: whatever accumulates while a send is in flight
 * goes in the next one, so a burst (a thousand devices re-registering after a network outage) costs a few send calls,
 * not one each. Delivery is best effort, as for every twin event (shared/twinEvents.ts): a failed send is logged and
 * its events are dropped; so are the oldest events once `maxQueued` wait, so a Service Bus outage costs events, never
 * the connector's memory. `drain()` resolves when everything emitted so far was sent or given up.
 */
import { EVENTS_PER_SEND, EventPublisher, TwinEvent, publishBestEffort } from '../shared/twinEvents';
import { Logger, ThrottledWarnings } from './logger';

export interface EventQueueStats {
  emitted: number;
  /** Accepted by the topic. */
  published: number;
  /** Dropped: their send failed, or the queue was full. */
  dropped: number;
}

export interface EventQueueOptions {
  log: Logger;
  now: () => number;
  /** Events waiting at most (default 10,000, a few MB). */
  maxQueued?: number;
}

/** Where connector code hands its events: `EventQueue`, or nothing at all when the connector runs without events. */
export interface EventSink {
  emit(events: readonly TwinEvent[]): void;
}

export const NO_EVENTS: EventSink = { emit: () => {} };

export class EventQueue implements EventSink {
  readonly stats: EventQueueStats = { emitted: 0, published: 0, dropped: 0 };
  private queue: TwinEvent[] = [];
  private sending?: Promise<void>;
  private readonly log: Logger;
  private readonly warnings: ThrottledWarnings;
  private readonly maxQueued: number;

  constructor(
    private readonly publisher: EventPublisher,
    options: EventQueueOptions,
  ) {
    this.log = options.log;
    this.warnings = new ThrottledWarnings(options.log, options.now);
    this.maxQueued = options.maxQueued ?? 10_000;
  }

  get pending(): number {
    return this.queue.length;
  }

  emit(events: readonly TwinEvent[]): void {
    if (events.length === 0) return;
    this.stats.emitted += events.length;
    this.queue.push(...events);
    const excess = this.queue.length - this.maxQueued;
    if (excess > 0) {
      this.queue.splice(0, excess);
      this.stats.dropped += excess;
      this.warnings.warn('twin events dropped: too many waiting for Service Bus', { dropped: excess });
    }
    this.sending ??= this.sendAll();
  }

  /**
   * Resolves when every event emitted so far was published or dropped, or after `timeoutMs` (a shutdown must not wait
   * for the SDK's retries against an unreachable namespace) with false and a warning counting what still waits.
   */
  async drain(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const drained = (async () => {
      while (this.sending) await this.sending;
      return true as const;
    })();
    const done = await Promise.race([drained, timedOut]);
    clearTimeout(timer);
    if (!done) {
      // `waiting` leaves out the send in flight, which may still succeed after the caller moved on.
      this.log.warn('twin events still waiting at the drain timeout', { waiting: this.queue.length, timeoutMs });
    }
    return done;
  }

  private async sendAll(): Promise<void> {
    // Yield once, so that events emitted in the same turn share the first send.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, EVENTS_PER_SEND);
      let failed = false;
      await publishBestEffort(this.publisher, batch, (message) => {
        failed = true;
        this.warnings.warn(message);
      });
      if (failed) this.stats.dropped += batch.length;
      else this.stats.published += batch.length;
    }
    this.sending = undefined;
  }
}
