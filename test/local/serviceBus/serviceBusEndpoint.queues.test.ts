/** Queues through the real `@azure/service-bus` SDK: send, receive, settle, locks, dead-lettering, peek. */
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { NO_RETRIES, sleep, startTestServiceBus, TEST_LOCK_MS, type TestServiceBus } from './testServiceBus';

let bus: TestServiceBus;

beforeEach(async () => {
  bus = await startTestServiceBus();
});

afterEach(async () => {
  await bus.stop();
});

const bodies = (messages: ServiceBusReceivedMessage[]): unknown[] => messages.map((message) => message.body);

test('the connection string uses the development emulator mode on the chosen port', () => {
  expect(bus.endpoint.port).toBeGreaterThan(0);
  expect(bus.endpoint.connectionString).toBe(
    `Endpoint=sb://localhost:${bus.endpoint.port};SharedAccessKeyName=RootManageSharedAccessKey;` +
      'SharedAccessKey=local;UseDevelopmentEmulator=true',
  );
});

test('single messages and a batch are each enqueued and received in order with broker annotations', async () => {
  const client = bus.client();
  const sender = client.createSender('work');
  const before = Date.now();
  await sender.sendMessages({ body: { n: 1 }, messageId: 'one', applicationProperties: { kind: 'single', size: 7 } });
  const batch = await sender.createMessageBatch();
  expect(batch.tryAddMessage({ body: { n: 2 }, messageId: 'two' })).toBe(true);
  expect(batch.tryAddMessage({ body: { n: 3 }, messageId: 'three', subject: 'third' })).toBe(true);
  await sender.sendMessages(batch);
  await sender.sendMessages([{ body: { n: 4 } }, { body: { n: 5 }, contentType: 'application/json' }]);

  const receiver = client.createReceiver('work');
  const received = await receiver.receiveMessages(5, { maxWaitTimeInMs: 1000 });

  expect(bodies(received)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }, { n: 5 }]);
  expect(received.map((message) => message.sequenceNumber?.toNumber())).toEqual([1, 2, 3, 4, 5]);
  expect(received[0].messageId).toBe('one');
  expect(received[0].applicationProperties).toEqual({ kind: 'single', size: 7 });
  expect(received[2].subject).toBe('third');
  expect(received[4].contentType).toBe('application/json');
  expect(received[3].messageId).toMatch(/^[0-9a-f]{32}$/);
  for (const message of received) {
    expect(message.deliveryCount).toBe(0);
    expect(message.lockToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(message.enqueuedTimeUtc!.getTime()).toBeGreaterThanOrEqual(before - 5);
    expect(message.lockedUntilUtc!.getTime()).toBeGreaterThan(message.enqueuedTimeUtc!.getTime());
    await receiver.completeMessage(message);
  }
  expect(await receiver.peekMessages(10)).toHaveLength(0);
});

test('a completed message is gone; settling it again reports the lock as lost', async () => {
  const client = bus.client(NO_RETRIES);
  await client.createSender('work').sendMessages({ body: 'once' });
  const receiver = client.createReceiver('work', { maxAutoLockRenewalDurationInMs: 0 });
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  await receiver.completeMessage(message);

  expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  await expect(receiver.renewMessageLock(message)).rejects.toMatchObject({ code: 'MessageLockLost' });
});

test('an abandoned message is delivered again with deliveryCount + 1', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages({ body: 'retry me', messageId: 'r1' });
  const receiver = client.createReceiver('work');

  const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  await receiver.abandonMessage(first, { attempt: 'one' });
  const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });

  expect(second.messageId).toBe('r1');
  expect(second.sequenceNumber?.toNumber()).toBe(first.sequenceNumber?.toNumber());
  expect(first.deliveryCount).toBe(0);
  expect(second.deliveryCount).toBe(1);
  expect(second.applicationProperties).toEqual({ attempt: 'one' });
  expect(second.lockToken).not.toBe(first.lockToken);
  await receiver.completeMessage(second);
});

test('a deferred message leaves the queue and is received by its sequence number', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages([{ body: 'later' }, { body: 'now' }]);
  const receiver = client.createReceiver('work');
  const [later] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  await receiver.deferMessage(later);

  const rest = await receiver.receiveMessages(5, { maxWaitTimeInMs: 500 });
  expect(bodies(rest)).toEqual(['now']);
  await receiver.completeMessage(rest[0]);
  const peeked = await receiver.peekMessages(5);
  expect(peeked.map((message) => [message.body, message.state])).toEqual([['later', 'deferred']]);

  const [deferred] = await receiver.receiveDeferredMessages(later.sequenceNumber!);
  expect(deferred.body).toBe('later');
  expect(deferred.state).toBe('deferred');
  expect(deferred.deliveryCount).toBe(1);
  await receiver.completeMessage(deferred);
  expect(await receiver.peekMessages(5)).toHaveLength(0);
  await expect(receiver.receiveDeferredMessages(later.sequenceNumber!)).rejects.toMatchObject({
    code: 'MessageNotFound',
  });
});

test('a dead-lettered message carries reason and description and is read back from the dead-letter queue', async () => {
  const client = bus.client();
  await client
    .createSender('work')
    .sendMessages({ body: { bad: true }, messageId: 'poison', applicationProperties: { a: 1 } });
  const receiver = client.createReceiver('work');
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  await receiver.deadLetterMessage(message, {
    deadLetterReason: 'InvalidJob',
    deadLetterErrorDescription: 'property must be readable',
  });
  expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);

  const deadLetters = client.createReceiver('work', { subQueueType: 'deadLetter' });
  const [dead] = await deadLetters.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  expect(dead.body).toEqual({ bad: true });
  expect(dead.messageId).toBe('poison');
  expect(dead.deadLetterReason).toBe('InvalidJob');
  expect(dead.deadLetterErrorDescription).toBe('property must be readable');
  expect(dead.applicationProperties).toMatchObject({ a: 1, DeadLetterReason: 'InvalidJob' });
  await deadLetters.completeMessage(dead);
});

test('an expired lock makes the message available again with deliveryCount + 1', async () => {
  const client = bus.client(NO_RETRIES);
  await client.createSender('work').sendMessages({ body: 'slow', messageId: 'slow' });
  const receiver = client.createReceiver('work', { maxAutoLockRenewalDurationInMs: 0 });
  const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  expect(first.lockedUntilUtc!.getTime() - Date.now()).toBeLessThanOrEqual(TEST_LOCK_MS);

  expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 400 })).toHaveLength(0);
  await sleep(first.lockedUntilUtc!.getTime() - Date.now() + 100);
  const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });

  expect(second.messageId).toBe('slow');
  expect(second.deliveryCount).toBe(1);
  await expect(receiver.completeMessage(first)).rejects.toMatchObject({ code: 'MessageLockLost' });
  await receiver.completeMessage(second);
});

test('renewMessageLock extends the lock past the original lock duration', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages({ body: 'long job' });
  const receiver = client.createReceiver('work', { maxAutoLockRenewalDurationInMs: 0 });
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  const firstLockedUntil = message.lockedUntilUtc!.getTime();

  await sleep(TEST_LOCK_MS / 2);
  const renewedUntil = await receiver.renewMessageLock(message);
  expect(renewedUntil.getTime()).toBeGreaterThan(firstLockedUntil + TEST_LOCK_MS / 4);
  await sleep(Math.max(0, firstLockedUntil - Date.now()) + 200);

  expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 200 })).toHaveLength(0);
  await receiver.completeMessage(message);
});

test('the SDK auto-renews locks through the management link while a message is held', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages({ body: 'held' });
  const receiver = client.createReceiver('work');
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  await sleep(TEST_LOCK_MS * 1.5);
  await receiver.completeMessage(message);
  expect(await receiver.peekMessages(5)).toHaveLength(0);
});

test('after maxDeliveryCount deliveries the message moves to the dead-letter queue', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages({ body: 'always fails', messageId: 'fails' });
  const receiver = client.createReceiver('work');
  for (let attempt = 0; attempt < 3; attempt++) {
    const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    expect(message.deliveryCount).toBe(attempt);
    await receiver.abandonMessage(message);
  }
  expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);

  const deadLetters = client.createReceiver('work', { subQueueType: 'deadLetter' });
  const [dead] = await deadLetters.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  expect(dead.messageId).toBe('fails');
  expect(dead.deadLetterReason).toBe('MaxDeliveryCountExceeded');
  expect(dead.deadLetterErrorDescription).toBe('Message could not be consumed after 3 delivery attempts.');
  expect(dead.deliveryCount).toBe(3);
  await deadLetters.completeMessage(dead);
});

test('duplicate detection drops a messageId already seen in the window, single or batched', async () => {
  const client = bus.client();
  const sender = client.createSender('deduplicated');
  await sender.sendMessages({ body: 'first', messageId: 'job-1' });
  await sender.sendMessages({ body: 'again', messageId: 'job-1' });
  await sender.sendMessages([
    { body: 'second', messageId: 'job-2' },
    { body: 'second again', messageId: 'job-2' },
    { body: 'first once more', messageId: 'job-1' },
  ]);
  await sender.sendMessages([{ body: 'no id' }, { body: 'no id either' }]);

  const receiver = client.createReceiver('deduplicated', { receiveMode: 'receiveAndDelete' });
  const received = await receiver.receiveMessages(10, { maxWaitTimeInMs: 500 });
  expect(bodies(received)).toEqual(['first', 'second', 'no id', 'no id either']);
});

test('receive-and-delete removes the message at delivery', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages([{ body: 1 }, { body: 2 }]);
  const receiver = client.createReceiver('work', { receiveMode: 'receiveAndDelete' });
  const received = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  expect(bodies(received)).toEqual([1]);
  expect(received[0].lockToken).toBeUndefined();
  expect((await receiver.peekMessages(5)).map((message) => message.body)).toEqual([2]);
});

test('peekMessages returns messages in order without locking them, and pages on', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
  const receiver = client.createReceiver('work');

  const firstPage = await receiver.peekMessages(2);
  const secondPage = await receiver.peekMessages(2);
  expect(bodies(firstPage)).toEqual(['a', 'b']);
  expect(bodies(secondPage)).toEqual(['c']);
  expect(firstPage[0].sequenceNumber?.toNumber()).toBe(1);
  expect(firstPage[0].lockToken).toBeUndefined();
  expect(bodies(await receiver.peekMessages(5, { fromSequenceNumber: firstPage[1].sequenceNumber }))).toEqual([
    'b',
    'c',
  ]);

  const received = await receiver.receiveMessages(3, { maxWaitTimeInMs: 1000 });
  expect(bodies(received)).toEqual(['a', 'b', 'c']);
  const peekedWhileLocked = await receiver.peekMessages(3, { fromSequenceNumber: firstPage[0].sequenceNumber });
  expect(peekedWhileLocked.map((message) => message.lockedUntilUtc instanceof Date)).toEqual([true, true, true]);
  for (const message of received) await receiver.completeMessage(message);
});

test('credit and drain: empty receives are answered without the SDK giving up the link', async () => {
  const client = bus.client();
  const receiver = client.createReceiver('work');
  const started = Date.now();
  expect(await receiver.receiveMessages(5, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  expect(await receiver.receiveMessages(5, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  expect(Date.now() - started).toBeLessThan(2000);
  await client.createSender('work').sendMessages([{ body: 1 }, { body: 2 }, { body: 3 }]);
  const received = await receiver.receiveMessages(2, { maxWaitTimeInMs: 1000 });
  expect(bodies(received)).toEqual([1, 2]);
  for (const message of received) await receiver.completeMessage(message);

  const receiverAttaches = bus.logs.filter((line) => /receiver '.*' on 'work' attached/.test(line));
  const detaches = bus.logs.filter((line) => line.includes('detached'));
  expect(receiverAttaches).toHaveLength(1);
  expect(detaches).toHaveLength(0);
});

test('a message with a scheduled enqueue time is delivered only from that time on', async () => {
  const client = bus.client();
  const at = new Date(Date.now() + 800);
  await client.createSender('work').sendMessages({ body: 'scheduled', scheduledEnqueueTimeUtc: at });
  const receiver = client.createReceiver('work');
  expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 300 })).toHaveLength(0);
  expect((await receiver.peekMessages(1)).map((message) => message.state)).toEqual(['scheduled']);
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 2000 });
  expect(message.body).toBe('scheduled');
  expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
  await receiver.completeMessage(message);
});

test('competing receivers each get different messages', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages([1, 2, 3, 4].map((n) => ({ body: n })));
  const one = client.createReceiver('work');
  const two = bus.client().createReceiver('work');
  const [fromOne, fromTwo] = await Promise.all([
    one.receiveMessages(2, { maxWaitTimeInMs: 1000 }),
    two.receiveMessages(2, { maxWaitTimeInMs: 1000 }),
  ]);
  expect([...bodies(fromOne), ...bodies(fromTwo)].sort()).toEqual([1, 2, 3, 4]);
});

test('a streaming receiver (subscribe) gets every message', async () => {
  const client = bus.client();
  await client.createSender('work').sendMessages([1, 2, 3, 4, 5].map((n) => ({ body: n })));
  const receiver = client.createReceiver('work');
  const processed: unknown[] = [];
  const allProcessed = new Promise<void>((resolve, reject) => {
    receiver.subscribe(
      {
        processMessage: async (message) => {
          await receiver.completeMessage(message);
          processed.push(message.body);
          if (processed.length === 5) resolve();
        },
        processError: async (args) => reject(args.error),
      },
      { maxConcurrentCalls: 2, autoCompleteMessages: false },
    );
  });
  await allProcessed;
  await receiver.close();
  expect([...processed].sort()).toEqual([1, 2, 3, 4, 5]);
  expect(await client.createReceiver('work').peekMessages(10)).toHaveLength(0);
});

test('an undeclared entity is reported as not found', async () => {
  const client = bus.client(NO_RETRIES);
  await expect(client.createSender('no-such-queue').sendMessages({ body: 1 })).rejects.toMatchObject({
    code: 'MessagingEntityNotFound',
  });
});
