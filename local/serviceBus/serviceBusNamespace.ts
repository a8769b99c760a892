/**
 * The entities of the local namespace and how addresses reach them: queues (send and receive), topics (send; each
 * message is copied to every subscription), subscriptions (receive) and dead-letter queues (receive). Addresses
 * are matched case-insensitively, as Service Bus does.
 */
import { Condition, DEAD_LETTER_QUEUE_SUFFIX, MAX_MESSAGE_SIZE_BYTES, SUBSCRIPTIONS_SEGMENT } from './amqpConstants';
import { AmqpConditionError } from './amqpConditionError';
import { type BrokeredMessage, withGeneratedMessageId } from './brokeredMessage';
import type { Clock } from './clock';
import { DuplicateDetector } from './duplicateDetector';
import type { NamespaceSettings, ReceivableEntitySettings } from './entitiesConfig';
import { MessageEntity } from './messageEntity';

/** Where senders write: a queue, or a topic that copies each message to its subscriptions. */
export class SendTarget {
  private readonly duplicates: DuplicateDetector | undefined;

  constructor(
    readonly path: string,
    private readonly destinations: readonly MessageEntity[],
    duplicateDetectionWindowMs: number | undefined,
    clock: Clock,
  ) {
    this.duplicates =
      duplicateDetectionWindowMs === undefined ? undefined : new DuplicateDetector(duplicateDetectionWindowMs, clock);
  }

  /**
   * Enqueues the messages of one transfer, all or none: any message that no destination can take fails the whole
   * transfer. A message whose messageId was seen within the duplicate detection window is accepted and dropped.
   * Returns how many messages were enqueued (duplicates excluded).
   */
  send(messages: readonly BrokeredMessage[]): number {
    const totalBytes = messages.reduce((sum, message) => sum + message.sizeBytes, 0);
    if (totalBytes > MAX_MESSAGE_SIZE_BYTES) {
      throw new AmqpConditionError(
        Condition.messageSizeExceeded,
        `The message size ${totalBytes} bytes exceeds the limit of ${MAX_MESSAGE_SIZE_BYTES} bytes of '${this.path}'.`,
      );
    }
    for (const message of messages) {
      for (const destination of this.destinations) destination.checkAcceptable(message);
    }
    let enqueued = 0;
    for (const sent of messages) {
      const message = sent.messageIdKey === undefined ? withGeneratedMessageId(sent) : sent;
      if (this.duplicates && message.messageIdKey !== undefined && this.duplicates.isDuplicate(message.messageIdKey)) {
        continue;
      }
      for (const destination of this.destinations) destination.enqueue(message);
      enqueued += 1;
    }
    return enqueued;
  }
}

/** What an address names: something to receive from, something to send to, or both (a queue). */
export interface ResolvedEntity {
  readonly path: string;
  readonly receiveFrom?: MessageEntity;
  readonly sendTo?: SendTarget;
}

/** Settings of a dead-letter queue: never expires, never dead-letters, no sessions. */
function deadLetterQueueSettings(parent: ReceivableEntitySettings): ReceivableEntitySettings {
  return {
    requiresSession: false,
    maxDeliveryCount: parent.maxDeliveryCount,
    lockDurationMs: parent.lockDurationMs,
    deadLetteringOnMessageExpiration: false,
    defaultMessageTimeToLiveMs: Infinity,
  };
}

export class ServiceBusNamespace {
  private readonly entities = new Map<string, ResolvedEntity>();
  private readonly receivables: MessageEntity[] = [];

  constructor(settings: NamespaceSettings, clock: Clock) {
    const receivableWithDeadLetterQueue = (path: string, entitySettings: ReceivableEntitySettings): MessageEntity => {
      const deadLetterPath = `${path}${DEAD_LETTER_QUEUE_SUFFIX}`;
      const deadLetterQueue = new MessageEntity(deadLetterPath, deadLetterQueueSettings(entitySettings), clock);
      const entity = new MessageEntity(path, entitySettings, clock, deadLetterQueue);
      this.receivables.push(entity, deadLetterQueue);
      this.register({ path: deadLetterPath, receiveFrom: deadLetterQueue });
      return entity;
    };
    for (const queue of settings.queues) {
      const entity = receivableWithDeadLetterQueue(queue.name, queue);
      this.register({
        path: queue.name,
        receiveFrom: entity,
        sendTo: new SendTarget(queue.name, [entity], queue.duplicateDetectionWindowMs, clock),
      });
    }
    for (const topic of settings.topics) {
      const subscriptions = topic.subscriptions.map((subscription) => {
        const path = `${topic.name}/${SUBSCRIPTIONS_SEGMENT}/${subscription.name}`;
        const entity = receivableWithDeadLetterQueue(path, subscription);
        this.register({ path, receiveFrom: entity });
        return entity;
      });
      this.register({
        path: topic.name,
        sendTo: new SendTarget(topic.name, subscriptions, topic.duplicateDetectionWindowMs, clock),
      });
    }
  }

  /** The entity an address names (`queue`, `topic/Subscriptions/name`, `.../$DeadLetterQueue`), if any. */
  resolve(address: string): ResolvedEntity | undefined {
    return this.entities.get(normaliseAddress(address));
  }

  /** Every entity path, for logs. */
  get paths(): string[] {
    return [...this.entities.values()].map((entity) => entity.path);
  }

  dispose(): void {
    for (const entity of this.receivables) entity.dispose();
  }

  private register(entity: ResolvedEntity): void {
    this.entities.set(normaliseAddress(entity.path), entity);
  }
}

/** Drops a scheme and host (`amqps://ns.servicebus.windows.net/queue` -> `queue`), slashes at the ends and case. */
export function normaliseAddress(address: string): string {
  return address
    .replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '')
    .replace(/^\/+|\/+$/g, '')
    .toLowerCase();
}
