/**
 * Bad input never takes the endpoint down: malformed frames, undecodable messages and unsupported operations get
 * an AMQP error (or a closed socket) and the endpoint keeps serving the SDK.
 */
import { connect as connectSocket } from 'node:net';
import { create_container, type Connection, type Delivery, type EventContext, type Message } from 'rhea';
import { BATCH_MESSAGE_FORMAT } from '../../../local/serviceBus/amqpConstants';
import { NO_RETRIES, startTestServiceBus, type TestServiceBus } from './testServiceBus';

let bus: TestServiceBus;
let rawConnections: Connection[] = [];

beforeEach(async () => {
  bus = await startTestServiceBus();
  rawConnections = [];
});

afterEach(async () => {
  for (const connection of rawConnections) connection.close();
  // Malformed input is logged as an error by design; those lines are expected here.
  bus.logs.splice(0, bus.logs.length, ...bus.logs.filter((line) => !/protocol error|AMQP error/.test(line)));
  await bus.stop();
});

/** Sends bytes on a fresh TCP connection and resolves when the endpoint closes it. */
function sendBytesUntilClosed(bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connectSocket(bus.endpoint.port, '127.0.0.1', () => socket.write(bytes));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
    setTimeout(() => {
      socket.destroy();
      reject(new Error('the endpoint kept a connection with malformed input open'));
    }, 5000).unref();
  });
}

async function expectStillServing(): Promise<void> {
  const client = bus.client();
  await client.createSender('work').sendMessages({ body: 'still here' });
  const receiver = client.createReceiver('work', { receiveMode: 'receiveAndDelete' });
  const [message] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 1000 });
  expect(message.body).toBe('still here');
}

/** An AMQP connection made with rhea directly, for requests the SDK never sends. */
function openRawConnection(): Promise<Connection> {
  const container = create_container({ id: 'robustness-test' });
  const connection = container.connect({ host: '127.0.0.1', port: bus.endpoint.port, reconnect: false });
  rawConnections.push(connection);
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve(connection));
    connection.once('disconnected', (context: EventContext) => reject(context.error ?? new Error('disconnected')));
  });
}

test('bytes that are not AMQP close that connection only', async () => {
  await sendBytesUntilClosed(Buffer.from('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
  await expectStillServing();
});

test('a malformed frame after a valid protocol header closes that connection only', async () => {
  const amqpHeader = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00]);
  const garbageFrame = Buffer.from([0x00, 0x00, 0x00, 0x0c, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]);
  await sendBytesUntilClosed(Buffer.concat([amqpHeader, garbageFrame]));
  await expectStillServing();
});

test('an undecodable batch is rejected with amqp:decode-error and the link stays usable', async () => {
  const connection = await openRawConnection();
  const sender = connection.open_sender('work');
  await new Promise((resolve) => sender.once('sendable', resolve));

  const rejected = await new Promise<EventContext>((resolve) => {
    sender.once('rejected', resolve);
    sender.send(Buffer.from([0x00, 0x53, 0x75, 0xa0, 0x03, 0x01]), undefined, BATCH_MESSAGE_FORMAT);
  });
  const error = (
    rejected.delivery as Delivery & { remote_state: { error: { condition: string; description: string } } }
  ).remote_state.error;
  expect(error.condition).toBe('amqp:decode-error');
  expect(error.description).toMatch(/cannot decode/);

  const accepted = await new Promise<string>((resolve) => {
    sender.once('accepted', () => resolve('accepted'));
    sender.send({ body: 'valid after invalid' });
  });
  expect(accepted).toBe('accepted');
});

test('an unknown management operation is answered with amqp:not-implemented naming it', async () => {
  const connection = await openRawConnection();
  const requests = connection.open_sender('work/$management');
  const replies = connection.open_receiver({
    source: { address: 'work/$management' },
    target: { address: 'my-replies' },
  });
  await new Promise((resolve) => replies.once('receiver_open', resolve));
  const response = await new Promise<Message>((resolve) => {
    replies.once('message', (context: EventContext) => resolve(context.message!));
    requests.send({
      message_id: 'request-1',
      reply_to: 'my-replies',
      application_properties: { operation: 'com.microsoft:purge-everything' },
      body: {},
    });
  });
  expect(response.correlation_id).toBe('request-1');
  expect(response.application_properties).toMatchObject({
    statusCode: 501,
    errorCondition: 'amqp:not-implemented',
    statusDescription: expect.stringContaining("'com.microsoft:purge-everything' is not supported"),
  });
});

test('an operation the SDK offers but the endpoint does not support fails with an error naming it', async () => {
  const sender = bus.client(NO_RETRIES).createSender('work');
  await expect(sender.scheduleMessages({ body: 'later' }, new Date(Date.now() + 60_000))).rejects.toMatchObject({
    message: expect.stringContaining("'com.microsoft:schedule-message' is not supported"),
  });
  await expectStillServing();
});
