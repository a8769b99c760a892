/** Topics and subscriptions through the real `@azure/service-bus` SDK. */
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import { NO_RETRIES, startTestServiceBus, type TestServiceBus } from './testServiceBus';

let bus: TestServiceBus;

beforeEach(async () => {
  bus = await startTestServiceBus();
});

afterEach(async () => {
  await bus.stop();
});

const bodies = (messages: ServiceBusReceivedMessage[]): unknown[] => messages.map((message) => message.body);

test('a message sent to a topic is copied to every subscription, each settled on its own', async () => {
  const client = bus.client();
  const sender = client.createSender('events');
  await sender.sendMessages({ body: { kind: 'stale', deviceId: 'sim-001' }, messageId: 'e1' });
  await sender.sendMessages([{ body: { kind: 'fresh', deviceId: 'sim-001' } }, { body: { kind: 'connected' } }]);

  const automation = client.createReceiver('events', 'automation');
  const audit = client.createReceiver('events', 'audit');
  const fromAutomation = await automation.receiveMessages(3, { maxWaitTimeInMs: 1000 });
  const fromAudit = await audit.receiveMessages(3, { maxWaitTimeInMs: 1000 });
  const expected = [
    { kind: 'stale', deviceId: 'sim-001' },
    { kind: 'fresh', deviceId: 'sim-001' },
    { kind: 'connected' },
  ];
  expect(bodies(fromAutomation)).toEqual(expected);
  expect(bodies(fromAudit)).toEqual(expected);
  expect(fromAutomation[0].messageId).toBe('e1');

  for (const message of fromAutomation) await automation.completeMessage(message);
  expect(await automation.peekMessages(5)).toHaveLength(0);
  expect(bodies(await audit.peekMessages(5))).toEqual(expected);
});

test('a subscription dead-letters after its own maxDeliveryCount', async () => {
  const client = bus.client();
  await client.createSender('events').sendMessages({ body: 'unhandled', messageId: 'u1' });
  const audit = client.createReceiver('events', 'audit');
  for (let attempt = 0; attempt < 2; attempt++) {
    const [message] = await audit.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    await audit.abandonMessage(message);
  }
  const deadLetters = client.createReceiver('events', 'audit', { subQueueType: 'deadLetter' });
  const [dead] = await deadLetters.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  expect(dead.messageId).toBe('u1');
  expect(dead.deadLetterReason).toBe('MaxDeliveryCountExceeded');

  const automation = client.createReceiver('events', 'automation');
  expect(bodies(await automation.receiveMessages(1, { maxWaitTimeInMs: 1000 }))).toEqual(['unhandled']);
});

test('a session-enabled subscription is received with session receivers', async () => {
  const client = bus.client();
  const sender = client.createSender('device-events');
  await sender.sendMessages([
    { body: 'a1', sessionId: 'sim-a' },
    { body: 'b1', sessionId: 'sim-b' },
    { body: 'a2', sessionId: 'sim-a' },
  ]);
  const receiver = await client.acceptSession('device-events', 'per-device', 'sim-a');
  expect(bodies(await receiver.receiveMessages(5, { maxWaitTimeInMs: 500 }))).toEqual(['a1', 'a2']);
  const next = await client.acceptNextSession('device-events', 'per-device');
  expect(next.sessionId).toBe('sim-b');
});

test('topics are for sending and subscriptions for receiving', async () => {
  const client = bus.client(NO_RETRIES);
  await expect(client.createSender('events/Subscriptions/audit').sendMessages({ body: 1 })).rejects.toMatchObject({
    message: expect.stringMatching(/Cannot send to 'events\/Subscriptions\/audit'/),
  });
  await expect(client.createReceiver('events').receiveMessages(1, { maxWaitTimeInMs: 300 })).rejects.toMatchObject({
    message: expect.stringMatching(/Cannot receive from 'events'/),
  });
  await expect(
    client.createReceiver('events', 'nobody').receiveMessages(1, { maxWaitTimeInMs: 300 }),
  ).rejects.toMatchObject({
    code: 'MessagingEntityNotFound',
  });
});
