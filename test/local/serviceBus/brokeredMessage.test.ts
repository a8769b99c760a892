import { message as amqpMessage, types } from 'rhea';
import {
  encodeForReceiver,
  messagesOfTransfer,
  MessageFormatError,
  parseBrokeredMessage,
  withApplicationProperties,
  withGeneratedMessageId,
} from '../../../local/serviceBus/brokeredMessage';

const FIELDS = { deliveryCount: 2, sequenceNumber: 7, enqueuedTimeMs: 1_700_000_000_000, messageState: 0 };

test('the broker fields replace header and annotations; the other sections go out unchanged', () => {
  const sent = amqpMessage.encode({
    durable: true,
    ttl: 60_000,
    message_id: 'm1',
    group_id: 'dev-1',
    message_annotations: { 'x-opt-partition-key': 'p', 'x-opt-sequence-number': 99 },
    application_properties: { big: types.wrap_long(2 ** 40), small: types.wrap_ubyte(3) },
    body: amqpMessage.data_section(Buffer.from('{"a":1}')),
  });
  const brokered = parseBrokeredMessage(sent);
  expect(brokered).toMatchObject({ messageIdKey: 'string:m1', sessionId: 'dev-1', timeToLiveMs: 60_000 });

  const delivered = encodeForReceiver(brokered, { ...FIELDS, lockedUntilMs: 1_700_000_060_000 });
  const decoded = amqpMessage.decode(delivered);
  expect(decoded).toMatchObject({ durable: true, ttl: 60_000, delivery_count: 2, first_acquirer: false });
  expect(decoded.message_annotations).toEqual({
    'x-opt-partition-key': 'p',
    'x-opt-sequence-number': 7,
    'x-opt-enqueued-time': new Date(1_700_000_000_000),
    'x-opt-message-state': 0,
    'x-opt-locked-until': new Date(1_700_000_060_000),
  });
  const bareSent = sent.subarray(sent.indexOf(Buffer.from([0x00, 0x53, 0x73])));
  expect(delivered.subarray(delivered.length - bareSent.length).equals(bareSent)).toBe(true);
});

test('added application properties keep the AMQP types of the existing ones', () => {
  const brokered = parseBrokeredMessage(
    amqpMessage.encode({ application_properties: { count: types.wrap_long(2 ** 40) }, body: 'x' }),
  );
  const dead = withApplicationProperties(brokered, { DeadLetterReason: 'Bad' });
  const delivered = encodeForReceiver(dead, FIELDS);
  const decoded = amqpMessage.decode(delivered);
  expect(decoded.application_properties).toEqual({ count: 2 ** 40, DeadLetterReason: 'Bad' });
  expect(decoded.body).toBe('x');
  // still a long (0x81), not the uint/ulong rhea would infer from a plain number
  expect(delivered.includes(Buffer.from([0x81, 0, 0, 0x01, 0, 0, 0, 0, 0]))).toBe(true);
});

test('a message without an id gets a generated one; its other properties stay', () => {
  const brokered = parseBrokeredMessage(amqpMessage.encode({ subject: 'hello', group_id: 'g', body: 1 }));
  expect(brokered.messageIdKey).toBeUndefined();
  const stamped = withGeneratedMessageId(brokered);
  const decoded = amqpMessage.decode(encodeForReceiver(stamped, FIELDS));
  expect(decoded.message_id).toMatch(/^[0-9a-f]{32}$/);
  expect(stamped.messageIdKey).toBe(`string:${decoded.message_id}`);
  expect(decoded).toMatchObject({ subject: 'hello', group_id: 'g', body: 1 });
});

test('a batch envelope yields its inner messages byte for byte', () => {
  const inner = [amqpMessage.encode({ body: 'one' }), amqpMessage.encode({ body: 'two', message_id: 2 })];
  const envelope = amqpMessage.encode({ body: amqpMessage.data_sections(inner) });
  expect(messagesOfTransfer(envelope, 0x80013700)).toEqual(inner);
  expect(messagesOfTransfer(inner[0], 0)).toEqual([inner[0]]);
});

test('undecodable input is a MessageFormatError that says where', () => {
  expect(() => parseBrokeredMessage(Buffer.from([0x00, 0x53, 0x77, 0xa1]))).toThrow(MessageFormatError);
  expect(() => parseBrokeredMessage(Buffer.from([0xa1, 0x01, 0x41]))).toThrow(
    'the value at byte 0 is not an AMQP message section',
  );
  const headerAfterBody = Buffer.concat([amqpMessage.encode({ body: 'b' }), Buffer.from([0x00, 0x53, 0x70, 0x45])]);
  expect(() => parseBrokeredMessage(headerAfterBody)).toThrow(/message section 0x70 at byte \d+ is out of order/);
  expect(() => messagesOfTransfer(amqpMessage.encode({ body: 'not data' }), 0x80013700)).toThrow(
    'the batch envelope has no data section',
  );
});
