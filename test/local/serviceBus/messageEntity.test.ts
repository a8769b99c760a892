/** Time rules of an entity, with an injected clock: lock expiry, renewal, maxDeliveryCount, TTL, schedules. */
import { message as amqpMessage, type Message } from 'rhea';
import { parseBrokeredMessage } from '../../../local/serviceBus/brokeredMessage';
import type { ReceivableEntitySettings } from '../../../local/serviceBus/entitiesConfig';
import {
  MessageEntity,
  type MessageConsumer,
  type MessageDelivery,
  type SessionGrant,
} from '../../../local/serviceBus/messageEntity';
import { SendTarget } from '../../../local/serviceBus/serviceBusNamespace';
import { FakeClock } from './fakeClock';

const LOCK_MS = 30_000;

const settings = (overrides: Partial<ReceivableEntitySettings> = {}): ReceivableEntitySettings => ({
  requiresSession: false,
  maxDeliveryCount: 3,
  lockDurationMs: LOCK_MS,
  deadLetteringOnMessageExpiration: true,
  defaultMessageTimeToLiveMs: Infinity,
  ...overrides,
});

function brokered(fields: Partial<Message>) {
  return parseBrokeredMessage(amqpMessage.encode({ body: 'payload', ...fields }));
}

class TestConsumer implements MessageConsumer {
  readonly received: { delivery: MessageDelivery; message: ReturnType<typeof amqpMessage.decode> }[] = [];
  lockLost = false;

  constructor(
    private credit: number,
    readonly sessionId: string | undefined = undefined,
    readonly ownerId = 'owner-1',
  ) {}

  readonly receiveMode = 'peekLock';

  availableCredit(): number {
    return this.credit;
  }

  deliver(delivery: MessageDelivery): void {
    this.credit -= 1;
    this.received.push({ delivery, message: amqpMessage.decode(delivery.encoded) });
  }

  sessionLockLost(): void {
    this.lockLost = true;
  }
}

function setUp(overrides: Partial<ReceivableEntitySettings> = {}) {
  const clock = new FakeClock();
  const deadLetters = new MessageEntity('q/$DeadLetterQueue', settings({ maxDeliveryCount: 100 }), clock);
  const entity = new MessageEntity('q', settings(overrides), clock, deadLetters);
  return { clock, entity, deadLetters };
}

test('a delivery carries sequence number, enqueued time, lock expiry and the prior delivery count', () => {
  const { clock, entity } = setUp();
  entity.enqueue(brokered({ message_id: 'm1' }));
  clock.advance(5);
  const consumer = new TestConsumer(1);
  entity.addConsumer(consumer);

  const [{ message }] = consumer.received;
  expect(message.message_id).toBe('m1');
  expect(message.body).toBe('payload');
  expect(message.delivery_count).toBe(0);
  expect(message.message_annotations).toMatchObject({
    'x-opt-sequence-number': 1,
    'x-opt-enqueued-time': new Date(clock.now() - 5),
    'x-opt-locked-until': new Date(clock.now() + LOCK_MS),
  });
});

test('a lock expires exactly after the lock duration, then the message is delivered again', () => {
  const { clock, entity } = setUp();
  entity.enqueue(brokered({}));
  const consumer = new TestConsumer(5);
  entity.addConsumer(consumer);
  const firstToken = consumer.received[0].delivery.lockToken;

  clock.advance(LOCK_MS - 1);
  expect(consumer.received).toHaveLength(1);
  clock.advance(1);
  expect(consumer.received).toHaveLength(2);
  expect(consumer.received[1].message.delivery_count).toBe(1);
  expect(() => entity.complete(firstToken)).toThrow(/lock .* is not valid/);
  entity.complete(consumer.received[1].delivery.lockToken);
  expect(entity.messageCount).toBe(0);
});

test('renewLock moves the expiry one lock duration from now', () => {
  const { clock, entity } = setUp();
  entity.enqueue(brokered({}));
  const consumer = new TestConsumer(5);
  entity.addConsumer(consumer);
  const token = consumer.received[0].delivery.lockToken;

  clock.advance(LOCK_MS - 1000);
  expect(entity.renewLock(token)).toBe(clock.now() + LOCK_MS);
  clock.advance(LOCK_MS - 1);
  expect(consumer.received).toHaveLength(1);
  clock.advance(1);
  expect(consumer.received).toHaveLength(2);
});

test('lock expiries count as deliveries: past maxDeliveryCount the message is dead-lettered', () => {
  const { clock, entity, deadLetters } = setUp({ maxDeliveryCount: 2 });
  entity.enqueue(brokered({ message_id: 'poison' }));
  const consumer = new TestConsumer(10);
  entity.addConsumer(consumer);
  clock.advance(LOCK_MS);
  expect(consumer.received).toHaveLength(2);
  clock.advance(LOCK_MS);
  expect(consumer.received).toHaveLength(2);
  expect(entity.messageCount).toBe(0);

  const deadLetterConsumer = new TestConsumer(1);
  deadLetters.addConsumer(deadLetterConsumer);
  const [{ message }] = deadLetterConsumer.received;
  expect(message.message_id).toBe('poison');
  expect(message.application_properties).toEqual({
    DeadLetterReason: 'MaxDeliveryCountExceeded',
    DeadLetterErrorDescription: 'Message could not be consumed after 2 delivery attempts.',
  });
});

test('a message past its time to live is dead-lettered instead of delivered', () => {
  const { clock, entity, deadLetters } = setUp({ defaultMessageTimeToLiveMs: 60_000 });
  entity.enqueue(brokered({ message_id: 'late', ttl: 10_000 }));
  entity.enqueue(brokered({ message_id: 'on-time' }));
  clock.advance(10_000);
  const consumer = new TestConsumer(5);
  entity.addConsumer(consumer);
  expect(consumer.received.map((received) => received.message.message_id)).toEqual(['on-time']);

  const deadLetterConsumer = new TestConsumer(5);
  deadLetters.addConsumer(deadLetterConsumer);
  expect(deadLetterConsumer.received.map((received) => received.message.application_properties)).toEqual([
    {
      DeadLetterReason: 'TTLExpiredException',
      DeadLetterErrorDescription: 'The message expired and was dead lettered.',
    },
  ]);
});

test('a scheduled message is delivered at its scheduled time, not before', () => {
  const { clock, entity } = setUp();
  const consumer = new TestConsumer(5);
  entity.addConsumer(consumer);
  entity.enqueue(brokered({ message_annotations: { 'x-opt-scheduled-enqueue-time': new Date(clock.now() + 5000) } }));
  clock.advance(4999);
  expect(consumer.received).toHaveLength(0);
  clock.advance(1);
  expect(consumer.received).toHaveLength(1);
});

test('an expired session lock releases the session and tells its receiver', () => {
  const { clock, entity } = setUp({ requiresSession: true });
  entity.enqueue(brokered({ group_id: 'dev-1', message_id: 'a' }));
  const grant = entity.acceptSession('owner-1', undefined)!;
  expect(grant).toEqual({ sessionId: 'dev-1', lockedUntilMs: clock.now() + LOCK_MS });
  const consumer = new TestConsumer(1, 'dev-1', 'owner-1');
  entity.addConsumer(consumer);
  expect(consumer.received).toHaveLength(1);

  expect(() => entity.acceptSession('owner-2', 'dev-1')).toThrow(/cannot be accepted/);
  clock.advance(LOCK_MS);
  expect(consumer.lockLost).toBe(true);
  entity.removeConsumer(consumer);
  const next = entity.acceptSession('owner-2', undefined);
  expect(next?.sessionId).toBe('dev-1');
  const second = new TestConsumer(1, 'dev-1', 'owner-2');
  entity.addConsumer(second);
  expect(second.received[0].message.delivery_count).toBe(1);
});

test('renewSessionLock keeps the session past the first expiry; state needs the lock', () => {
  const { clock, entity } = setUp({ requiresSession: true });
  entity.acceptSession('owner-1', 'dev-1');
  clock.advance(LOCK_MS - 1);
  expect(entity.renewSessionLock('dev-1', 'owner-1')).toBe(clock.now() + LOCK_MS);
  clock.advance(LOCK_MS - 1);
  entity.setSessionState('dev-1', 'owner-1', Buffer.from('state'));
  expect(entity.getSessionState('dev-1', undefined)).toEqual(Buffer.from('state'));
  expect(() => entity.getSessionState('dev-1', 'owner-2')).toThrow(/not held by this receiver/);
  clock.advance(1);
  expect(() => entity.getSessionState('dev-1', 'owner-1')).toThrow(/not held by this receiver/);
});

test('a receiver waiting for any session is granted one when a message arrives', () => {
  const { entity } = setUp({ requiresSession: true });
  const grants: SessionGrant[] = [];
  entity.waitForSession({ ownerId: 'owner-1', grant: (grant) => grants.push(grant) });
  expect(grants).toHaveLength(0);
  entity.enqueue(brokered({ group_id: 'dev-9' }));
  expect(grants.map((grant) => grant.sessionId)).toEqual(['dev-9']);
});

test('duplicate detection drops a messageId within the window and accepts it after', () => {
  const clock = new FakeClock();
  const queue = new MessageEntity('q', settings(), clock);
  const target = new SendTarget('q', [queue], 600_000, clock);
  expect(target.send([brokered({ message_id: 'job-1' })])).toBe(1);
  clock.advance(599_999);
  expect(target.send([brokered({ message_id: 'job-1' }), brokered({ message_id: 'job-2' })])).toBe(1);
  clock.advance(1);
  expect(target.send([brokered({ message_id: 'job-1' })])).toBe(1);
  expect(queue.messageCount).toBe(3);
});
