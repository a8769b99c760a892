/** Session-enabled queues through the real `@azure/service-bus` SDK (queue 'jobs': lock duration TEST_LOCK_MS). */
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

async function sendInterleaved(count: number, sessions: string[]): Promise<void> {
  const sender = bus.client().createSender('jobs');
  for (let index = 0; index < count; index++) {
    for (const sessionId of sessions) {
      await sender.sendMessages({ body: `${sessionId}-${index}`, sessionId, messageId: `${sessionId}-${index}` });
    }
  }
}

test('messages of one session are delivered in the order they were sent', async () => {
  await sendInterleaved(10, ['dev-a', 'dev-b']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-a');
  const received: ServiceBusReceivedMessage[] = [];
  while (received.length < 10) {
    const batch = await receiver.receiveMessages(3, { maxWaitTimeInMs: 500 });
    expect(batch.length).toBeGreaterThan(0);
    for (const message of batch) {
      expect(message.sessionId).toBe('dev-a');
      await receiver.completeMessage(message);
    }
    received.push(...batch);
  }
  expect(bodies(received)).toEqual(Array.from({ length: 10 }, (_, index) => `dev-a-${index}`));
});

test('an abandoned session message comes back first, keeping the order', async () => {
  await sendInterleaved(3, ['dev-a']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-a');
  const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  await receiver.abandonMessage(first);
  const again = await receiver.receiveMessages(3, { maxWaitTimeInMs: 500 });
  expect(bodies(again)).toEqual(['dev-a-0', 'dev-a-1', 'dev-a-2']);
  expect(again[0].deliveryCount).toBe(1);
});

test('two sessions go to two receivers, which receive in parallel', async () => {
  await sendInterleaved(5, ['dev-a', 'dev-b']);
  const client = bus.client();
  const first = await client.acceptNextSession('jobs');
  const second = await client.acceptNextSession('jobs');
  expect(new Set([first.sessionId, second.sessionId])).toEqual(new Set(['dev-a', 'dev-b']));

  const [fromFirst, fromSecond] = await Promise.all([
    first.receiveMessages(5, { maxWaitTimeInMs: 1000 }),
    second.receiveMessages(5, { maxWaitTimeInMs: 1000 }),
  ]);
  expect(bodies(fromFirst)).toEqual(Array.from({ length: 5 }, (_, index) => `${first.sessionId}-${index}`));
  expect(bodies(fromSecond)).toEqual(Array.from({ length: 5 }, (_, index) => `${second.sessionId}-${index}`));
});

test('acceptSession gets the named session only; acceptNextSession the next one with messages', async () => {
  await sendInterleaved(2, ['dev-a', 'dev-b', 'dev-c']);
  const client = bus.client();
  const named = await client.acceptSession('jobs', 'dev-b');
  expect(named.sessionId).toBe('dev-b');
  expect(bodies(await named.receiveMessages(5, { maxWaitTimeInMs: 500 }))).toEqual(['dev-b-0', 'dev-b-1']);

  const next = await client.acceptNextSession('jobs');
  expect(next.sessionId).toBe('dev-a');
  const nextAgain = await client.acceptNextSession('jobs');
  expect(nextAgain.sessionId).toBe('dev-c');
});

test('a session can be accepted by name before it has messages, and receives them as they come', async () => {
  const receiver = await bus.client().acceptSession('jobs', 'dev-new');
  const pending = receiver.receiveMessages(1, { maxWaitTimeInMs: 3000 });
  await sleep(100);
  await bus.client().createSender('jobs').sendMessages({ body: 'hello', sessionId: 'dev-new' });
  expect(bodies(await pending)).toEqual(['hello']);
});

test('a session held by one receiver is refused to another', async () => {
  await sendInterleaved(1, ['dev-a']);
  const holder = await bus.client().acceptSession('jobs', 'dev-a');
  const other = bus.client({ retryOptions: { maxRetries: 0, timeoutInMs: 1000 } });
  await expect(other.acceptSession('jobs', 'dev-a')).rejects.toMatchObject({ code: 'SessionCannotBeLocked' });
  await expect(other.acceptNextSession('jobs')).rejects.toMatchObject({ code: 'ServiceTimeout' });
  await holder.close();
  const taken = await other.acceptSession('jobs', 'dev-a');
  expect(bodies(await taken.receiveMessages(1, { maxWaitTimeInMs: 500 }))).toEqual(['dev-a-0']);
});

test('with no free session, acceptNextSession waits for the requested time and then times out', async () => {
  const client = bus.client({ retryOptions: { maxRetries: 0, timeoutInMs: 1200 } });
  const started = Date.now();
  await expect(client.acceptNextSession('jobs')).rejects.toMatchObject({ code: 'ServiceTimeout' });
  const waited = Date.now() - started;
  expect(waited).toBeGreaterThanOrEqual(1000);
  expect(waited).toBeLessThan(5000);
});

test('a waiting acceptNextSession gets a session as soon as one has a message', async () => {
  const client = bus.client({ retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } });
  const started = Date.now();
  const accepting = client.acceptNextSession('jobs');
  await sleep(300);
  await bus.client().createSender('jobs').sendMessages({ body: 'wake up', sessionId: 'dev-late' });
  const receiver = await accepting;
  expect(receiver.sessionId).toBe('dev-late');
  expect(Date.now() - started).toBeLessThan(3000);
  expect(bodies(await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 }))).toEqual(['wake up']);
});

test('an accept waiting with the SDK default timeout is refused before the SDK gives up, and the connection stays up', async () => {
  // The SDK asks to wait 60 s less 20-120 ms and gives up on the attach at 60 s, then ends its AMQP session; an answer
  // crossing that end used to drop the whole connection ("detach received on invalid channel"). Fake time passes in
  // 1 s steps with real socket I/O between them: an answer may take up to one step to reach the client.
  const realSetTimeout = setTimeout;
  const client = bus.client({ retryOptions: { maxRetries: 0 } });
  await client.createSender('work').sendMessages({ body: 'opens other sessions first, as an app does' });
  jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'hrtime', 'performance'] });
  let outcome: unknown;
  void client.acceptNextSession('jobs').then(
    (receiver) => (outcome = receiver),
    (error: unknown) => (outcome = error),
  );
  try {
    for (let second = 0; second < 70 && outcome === undefined; second++) {
      await new Promise((resolve) => realSetTimeout(resolve, 5));
      jest.advanceTimersByTime(1000);
    }
  } finally {
    jest.useRealTimers();
  }
  expect(outcome).toMatchObject({ code: 'ServiceTimeout', message: expect.stringContaining("No session of 'jobs'") });
  await client.createSender('jobs').sendMessages({ body: 'after the wait', sessionId: 'dev-a' });
  const receiver = await client.acceptNextSession('jobs');
  expect(bodies(await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 }))).toEqual(['after the wait']);
});

test('session state is kept per session, across receivers', async () => {
  await sendInterleaved(1, ['dev-a']);
  const client = bus.client();
  const first = await client.acceptSession('jobs', 'dev-a');
  expect(await first.getSessionState()).toBeNull();
  await first.setSessionState({ lastJob: 'job-7', attempts: 2 });
  expect(await first.getSessionState()).toEqual({ lastJob: 'job-7', attempts: 2 });
  await first.close();

  const second = await client.acceptSession('jobs', 'dev-a');
  expect(await second.getSessionState()).toEqual({ lastJob: 'job-7', attempts: 2 });
  await second.setSessionState(null);
  expect(await second.getSessionState()).toBeNull();
});

test('renewSessionLock extends the session lock past the lock duration', async () => {
  await sendInterleaved(2, ['dev-a']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-a', { maxAutoLockRenewalDurationInMs: 0 });
  const firstLockedUntil = receiver.sessionLockedUntilUtc!.getTime();
  expect(firstLockedUntil - Date.now()).toBeLessThanOrEqual(TEST_LOCK_MS);
  await sleep(TEST_LOCK_MS / 2);
  const renewed = await receiver.renewSessionLock();
  expect(renewed.getTime()).toBeGreaterThan(firstLockedUntil + TEST_LOCK_MS / 4);
  expect(receiver.sessionLockedUntilUtc!.getTime()).toBe(renewed.getTime());
  await sleep(Math.max(0, firstLockedUntil - Date.now()) + 200);

  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  expect(message.body).toBe('dev-a-0');
  await receiver.completeMessage(message);
});

test('an expired session lock frees the session and returns its unsettled messages', async () => {
  await sendInterleaved(1, ['dev-a']);
  const client = bus.client(NO_RETRIES);
  const stale = await client.acceptSession('jobs', 'dev-a', { maxAutoLockRenewalDurationInMs: 0 });
  const [held] = await stale.receiveMessages(1, { maxWaitTimeInMs: 500 });
  await sleep(stale.sessionLockedUntilUtc!.getTime() - Date.now() + 200);

  const fresh = await bus.client().acceptSession('jobs', 'dev-a');
  const [again] = await fresh.receiveMessages(1, { maxWaitTimeInMs: 500 });
  expect(again.messageId).toBe(held.messageId);
  expect(again.deliveryCount).toBe(1);
  await expect(stale.completeMessage(held)).rejects.toMatchObject({ code: 'SessionLockLost' });
  await fresh.completeMessage(again);
});

test('the SDK keeps a session lock alive on its own while the receiver is open', async () => {
  await sendInterleaved(2, ['dev-a']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-a');
  const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  await sleep(TEST_LOCK_MS * 1.5);
  await receiver.completeMessage(first);
  expect(bodies(await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 }))).toEqual(['dev-a-1']);
});

test('deferred session messages are received by sequence number on the session receiver', async () => {
  await sendInterleaved(2, ['dev-a']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-a');
  const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  await receiver.deferMessage(first);
  const [second] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  expect(second.body).toBe('dev-a-1');
  await receiver.completeMessage(second);
  const [deferred] = await receiver.receiveDeferredMessages(first.sequenceNumber!);
  expect(deferred.body).toBe('dev-a-0');
  await receiver.completeMessage(deferred);
  expect(await receiver.peekMessages(5)).toHaveLength(0);
});

test('peekMessages on a session receiver shows only that session', async () => {
  await sendInterleaved(2, ['dev-a', 'dev-b']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-b');
  expect(bodies(await receiver.peekMessages(10))).toEqual(['dev-b-0', 'dev-b-1']);
});

test('duplicate detection works on the session queue (messageId = jobId)', async () => {
  const sender = bus.client().createSender('jobs');
  await sender.sendMessages({ body: 'job', messageId: 'job-1', sessionId: 'dev-a' });
  await sender.sendMessages({ body: 'job again', messageId: 'job-1', sessionId: 'dev-a' });
  const receiver = await bus.client().acceptSession('jobs', 'dev-a');
  expect(bodies(await receiver.receiveMessages(5, { maxWaitTimeInMs: 500 }))).toEqual(['job']);
});

test('a streaming session receiver processes its session one message at a time, in order', async () => {
  await sendInterleaved(6, ['dev-a', 'dev-b']);
  const receiver = await bus.client().acceptSession('jobs', 'dev-b');
  const processed: unknown[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  await new Promise<void>((resolve, reject) => {
    receiver.subscribe(
      {
        processMessage: async (message) => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await sleep(10);
          await receiver.completeMessage(message);
          processed.push(message.body);
          inFlight -= 1;
          if (processed.length === 6) resolve();
        },
        processError: async (args) => reject(args.error),
      },
      { autoCompleteMessages: false },
    );
  });
  await receiver.close();
  expect(processed).toEqual(Array.from({ length: 6 }, (_, index) => `dev-b-${index}`));
  expect(maxInFlight).toBe(1);
  const other = await bus.client().acceptSession('jobs', 'dev-b');
  expect(await other.peekMessages(10)).toHaveLength(0);
});

test('a message without a session id is refused by a session queue', async () => {
  const sender = bus.client(NO_RETRIES).createSender('jobs');
  await expect(sender.sendMessages({ body: 'no session' })).rejects.toMatchObject({
    message: expect.stringMatching(/^InvalidOperationError: The SessionId was not set on a message/),
  });
});

test('receivers must match the queue: no plain receiver on a session queue', async () => {
  const receiver = bus.client(NO_RETRIES).createReceiver('jobs');
  await expect(receiver.receiveMessages(1, { maxWaitTimeInMs: 500 })).rejects.toMatchObject({
    message: expect.stringMatching(/^InvalidOperationError: .*requires sessions/),
  });
});
