/**
 * Events for automation, on the Service Bus topic `twin-events` (subscribers each get every event).
 *
 * Message contract (what a subscriber may rely on): the body is one `TwinEvent` as JSON (`contentType`
 * `application/json`); `subject` is the event kind; application properties `kind`, `deviceId` and, when the
 * event has them, `property` and `status` carry the same values, for subscription SQL filters
 * (`kind = 'propertyStale'`). `messageId` is derived from the event, so a republished event is a duplicate.
 *
 * Delivery is best effort: an event is published after the write that caused it succeeded; if publishing then
 * fails the event is lost (the publisher's caller logs it) while the twin still tells the truth. A send the SDK
 * retried may arrive twice, with the same messageId.
 */
import { ServiceBusMessage, ServiceBusSender } from '@azure/service-bus';
import { createHash } from 'node:crypto';
import { Reading, StaleReason } from './twin';

export type TwinEventKind =
  /** A device property was flagged stale (by the sweep). */
  | 'propertyStale'
  /** A property that was stale got a value again (notify or deep read). */
  | 'propertyFresh'
  | 'deviceConnected'
  | 'deviceDisconnected'
  /** A job reached a final status. */
  | 'jobEnded';

/** A job's final status. */
export type JobEndStatus = 'completed' | 'failed' | 'cancelled';

export interface TwinEvent {
  deviceId: string;
  kind: TwinEventKind;
  /** propertyStale, propertyFresh: the property's name. */
  property?: string;
  /** When the change happened (ISO-8601 UTC); for propertyStale the property's staleSince. */
  time: string;
  /** propertyStale: why (`missedNotify` while connected, `disconnected` otherwise). */
  reason?: StaleReason;
  /** jobEnded. */
  jobId?: string;
  status?: JobEndStatus;
}

export interface EventPublisher {
  /** Publishes events in order; resolves once the topic accepted all of them. */
  publish(events: readonly TwinEvent[]): Promise<void>;
}

/**
 * Events are best effort (published after the write they describe; there is no outbox): a failure to publish is
 * reported through `warn` and never fails the write's caller.
 */
export async function publishBestEffort(
  publisher: EventPublisher,
  events: readonly TwinEvent[],
  warn: (message: string) => void,
): Promise<void> {
  if (events.length === 0) return;
  try {
    await publisher.publish(events);
  } catch (error) {
    warn(`Publishing ${events.length} twin event(s) failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export function propertyStaleEvents(
  deviceId: string,
  flags: readonly { property: string; since: string; reason: StaleReason }[],
): TwinEvent[] {
  return flags.map((flag) => ({
    deviceId,
    kind: 'propertyStale',
    property: flag.property,
    time: flag.since,
    reason: flag.reason,
  }));
}

/**
 * For the names a twin write reported as `refreshed` (stale before, fresh now), given the readings it wrote: each
 * event's time is the newest reading's time of that property.
 */
export function propertyFreshEvents(
  deviceId: string,
  refreshed: readonly string[],
  readings: readonly Pick<Reading, 'name' | 'time'>[],
): TwinEvent[] {
  return refreshed.flatMap((property): TwinEvent[] => {
    const time = readings
      .filter((reading) => reading.name === property)
      .map((reading) => reading.time)
      .sort()
      .at(-1);
    return time === undefined ? [] : [{ deviceId, kind: 'propertyFresh', property, time }];
  });
}

export function connectionEvent(deviceId: string, state: 'connected' | 'disconnected', time: string): TwinEvent {
  return { deviceId, kind: state === 'connected' ? 'deviceConnected' : 'deviceDisconnected', time };
}

export function jobEndedEvent(job: { deviceId: string; jobId: string; status: JobEndStatus }, time: string): TwinEvent {
  return { deviceId: job.deviceId, kind: 'jobEnded', jobId: job.jobId, status: job.status, time };
}

/** Messages per send call: one AMQP batch envelope, far below the 256 KB message size limit at ~300 B each. */
export const EVENTS_PER_SEND = 100;

export function toServiceBusMessage(event: TwinEvent): ServiceBusMessage {
  const applicationProperties: Record<string, string> = { kind: event.kind, deviceId: event.deviceId };
  if (event.property !== undefined) applicationProperties.property = event.property;
  if (event.status !== undefined) applicationProperties.status = event.status;
  return {
    body: event,
    contentType: 'application/json',
    subject: event.kind,
    messageId: eventId(event),
    applicationProperties,
  };
}

/** A stable id for an event (hex, 32 characters): the same change published twice gets the same id. */
export function eventId(event: TwinEvent): string {
  const key = JSON.stringify([event.kind, event.deviceId, event.property ?? null, event.jobId ?? null, event.time]);
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

/** Publishes to the topic through one long-lived sender, which the composition root creates and closes. */
export class ServiceBusEventPublisher implements EventPublisher {
  constructor(private readonly sender: ServiceBusSender) {}

  async publish(events: readonly TwinEvent[]): Promise<void> {
    for (let start = 0; start < events.length; start += EVENTS_PER_SEND) {
      await this.sender.sendMessages(events.slice(start, start + EVENTS_PER_SEND).map(toServiceBusMessage));
    }
  }
}
