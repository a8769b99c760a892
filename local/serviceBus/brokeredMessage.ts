/**
 * A message as the broker keeps it: the sender's encoded AMQP sections plus the few fields the broker reads. On
 * delivery the header and message annotations are written anew (delivery count, sequence number, lock expiry, ...)
 * and the other sections go out as stored. Messages of a batch are stored byte for byte; a single message arrives
 * decoded by rhea and is stored as rhea re-encodes it (same values; rhea's own choice of AMQP types).
 */
import { randomUUID } from 'node:crypto';
import { message as amqpMessage } from 'rhea';
import type { Typed } from 'rhea';
import { Annotation, BATCH_MESSAGE_FORMAT } from './amqpConstants';
import { amqpTypes, messageSections } from './rheaInternals';

/** Descriptor codes of the AMQP message sections, in the order they appear in a message. */
const SectionCode = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  amqpSequence: 0x76,
  amqpValue: 0x77,
  footer: 0x78,
} as const;

const SYMBOLIC_SECTION_CODES: Record<string, number> = {
  'amqp:header:list': SectionCode.header,
  'amqp:delivery-annotations:map': SectionCode.deliveryAnnotations,
  'amqp:message-annotations:map': SectionCode.messageAnnotations,
  'amqp:properties:list': SectionCode.properties,
  'amqp:application-properties:map': SectionCode.applicationProperties,
  'amqp:data:binary': SectionCode.data,
  'amqp:amqp-sequence:list': SectionCode.amqpSequence,
  'amqp:amqp-value:*': SectionCode.amqpValue,
  'amqp:footer:map': SectionCode.footer,
};

/** A message that cannot be decoded; the sender gets it back as `amqp:decode-error`. */
export class MessageFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MessageFormatError';
  }
}

export interface RawSection {
  readonly code: number;
  readonly bytes: Buffer;
}

/** A message accepted from a sender, before the entity assigns its sequence number. */
export interface BrokeredMessage {
  readonly sections: readonly RawSection[];
  /** Key of the AMQP message-id for duplicate detection (type-qualified), if the message has one. */
  readonly messageIdKey: string | undefined;
  /** AMQP group-id: the Service Bus session id. */
  readonly sessionId: string | undefined;
  /** AMQP header ttl, ms. */
  readonly timeToLiveMs: number | undefined;
  /** Epoch ms before which the message must not be delivered. */
  readonly scheduledEnqueueTimeMs: number | undefined;
  readonly sizeBytes: number;
}

/** Fields the broker writes into each delivered or peeked copy. */
export interface BrokerFields {
  /** Prior delivery attempts (the AMQP header delivery-count). */
  readonly deliveryCount: number;
  readonly sequenceNumber: number;
  readonly enqueuedTimeMs: number;
  readonly lockedUntilMs?: number;
  readonly messageState: number;
}

/** Decodes one encoded message (format 0). Throws {@link MessageFormatError}. */
export function parseBrokeredMessage(encoded: Buffer): BrokeredMessage {
  const sections = splitSections(encoded);
  let decoded;
  try {
    decoded = amqpMessage.decode(encoded);
  } catch (error) {
    throw new MessageFormatError(`cannot decode the message: ${(error as Error).message}`);
  }
  const scheduled: unknown = decoded.message_annotations?.[Annotation.scheduledEnqueueTime];
  return {
    sections,
    messageIdKey: messageIdKeyOf(decoded.message_id),
    sessionId: typeof decoded.group_id === 'string' ? decoded.group_id : undefined,
    timeToLiveMs: typeof decoded.ttl === 'number' ? decoded.ttl : undefined,
    scheduledEnqueueTimeMs:
      scheduled instanceof Date ? scheduled.getTime() : typeof scheduled === 'number' ? scheduled : undefined,
    sizeBytes: encoded.length,
  };
}

/**
 * The encoded messages carried by one transfer: the message itself for the standard format, the inner messages
 * of a batch envelope ({@link BATCH_MESSAGE_FORMAT}). Throws {@link MessageFormatError}.
 */
export function messagesOfTransfer(payload: Buffer, messageFormat: number): Buffer[] {
  if (messageFormat !== BATCH_MESSAGE_FORMAT) return [payload];
  const dataSections = splitSections(payload).filter((section) => section.code === SectionCode.data);
  if (dataSections.length === 0) throw new MessageFormatError('the batch envelope has no data section');
  return dataSections.map((section) => {
    const inner: unknown = readDescribed(section).value;
    if (!Buffer.isBuffer(inner)) throw new MessageFormatError('a data section of the batch envelope is not binary');
    return inner;
  });
}

/** The message as sent to a receiver or returned by peek: new header and annotations, other sections verbatim. */
export function encodeForReceiver(message: BrokeredMessage, fields: BrokerFields): Buffer {
  const writer = new amqpTypes.Writer();
  writer.write(headerSection(message.sections, fields.deliveryCount));
  const annotations = readMap(message.sections.find((section) => section.code === SectionCode.messageAnnotations));
  annotations[Annotation.sequenceNumber] = amqpTypes.wrap_long(fields.sequenceNumber);
  annotations[Annotation.enqueuedTime] = amqpTypes.wrap_timestamp(fields.enqueuedTimeMs);
  annotations[Annotation.messageState] = amqpTypes.wrap_int(fields.messageState);
  if (fields.lockedUntilMs !== undefined) {
    annotations[Annotation.lockedUntil] = amqpTypes.wrap_timestamp(fields.lockedUntilMs);
  } else {
    delete annotations[Annotation.lockedUntil];
  }
  writer.write(
    amqpTypes.described(amqpTypes.wrap_ulong(SectionCode.messageAnnotations), amqpTypes.wrap_symbolic_map(annotations)),
  );
  const bare = message.sections.filter((section) => section.code > SectionCode.messageAnnotations);
  return Buffer.concat([writer.toBuffer(), ...bare.map((section) => section.bytes)]);
}

/**
 * A copy of the message with application properties added or replaced (dead-letter reason, `propertiesToModify`).
 * Values keep their AMQP types when they arrive typed; plain values are encoded as rhea infers.
 */
export function withApplicationProperties(message: BrokeredMessage, added: Record<string, unknown>): BrokeredMessage {
  const current = message.sections.find((section) => section.code === SectionCode.applicationProperties);
  const properties = readMap(current);
  for (const [key, value] of Object.entries(added)) {
    if (value !== undefined) properties[key] = amqpTypes.wrap(value);
  }
  const writer = new amqpTypes.Writer();
  writer.write(
    amqpTypes.described(amqpTypes.wrap_ulong(SectionCode.applicationProperties), amqpTypes.wrap_map(properties)),
  );
  const replacement: RawSection = { code: SectionCode.applicationProperties, bytes: writer.toBuffer() };
  return { ...message, sections: replaceSection(message.sections, replacement) };
}

/**
 * A copy of the message with a broker-assigned message-id (32 hex digits), as Service Bus stamps messages sent
 * without one; the other properties keep their values.
 */
export function withGeneratedMessageId(message: BrokeredMessage): BrokeredMessage {
  const messageId = randomUUID().replace(/-/g, '');
  const current = message.sections.find((section) => section.code === SectionCode.properties);
  const properties: Record<string, unknown> = {};
  if (current) {
    const decoded = amqpMessage.decode(current.bytes);
    for (const [key, value] of Object.entries(decoded)) {
      if (typeof value !== 'function') properties[key] = value;
    }
  }
  properties.message_id = messageId;
  const writer = new amqpTypes.Writer();
  writer.write(messageSections.properties(properties).described());
  const replacement: RawSection = { code: SectionCode.properties, bytes: writer.toBuffer() };
  return {
    ...message,
    sections: replaceSection(message.sections, replacement),
    messageIdKey: messageIdKeyOf(messageId),
  };
}

/** The sections with `replacement` in place of the section of its code, or inserted where that code belongs. */
function replaceSection(sections: readonly RawSection[], replacement: RawSection): RawSection[] {
  const others = sections.filter((section) => section.code !== replacement.code);
  const insertAt = others.findIndex((section) => section.code > replacement.code);
  others.splice(insertAt === -1 ? others.length : insertAt, 0, replacement);
  return others;
}

function splitSections(encoded: Buffer): RawSection[] {
  const reader = new amqpTypes.Reader(encoded);
  const sections: RawSection[] = [];
  let previousCode = 0;
  while (reader.remaining() > 0) {
    const start = reader.position;
    let section: Typed;
    try {
      section = reader.read();
    } catch (error) {
      throw new MessageFormatError(`cannot decode the message at byte ${start}: ${(error as Error).message}`);
    }
    const code = sectionCodeOf(section);
    if (code === undefined) {
      throw new MessageFormatError(`the value at byte ${start} is not an AMQP message section`);
    }
    const repeatable = code === SectionCode.data || code === SectionCode.amqpSequence;
    if (code < previousCode || (code === previousCode && !repeatable)) {
      throw new MessageFormatError(`message section 0x${code.toString(16)} at byte ${start} is out of order`);
    }
    previousCode = code;
    sections.push({ code, bytes: encoded.subarray(start, reader.position) });
  }
  return sections;
}

function sectionCodeOf(section: Typed): number | undefined {
  const descriptor: unknown = (section.descriptor as Typed | undefined)?.value;
  if (typeof descriptor === 'number') {
    return descriptor >= SectionCode.header && descriptor <= SectionCode.footer ? descriptor : undefined;
  }
  return typeof descriptor === 'string' ? SYMBOLIC_SECTION_CODES[descriptor] : undefined;
}

/** The section's value (a described value is read as the value with its `descriptor` attached). */
function readDescribed(section: RawSection): Typed {
  return new amqpTypes.Reader(section.bytes).read();
}

/** The entries of a map section as key -> typed value (types kept for re-encoding). */
function readMap(section: RawSection | undefined): Record<string, Typed> {
  const entries: Record<string, Typed> = {};
  if (!section) return entries;
  const map = readDescribed(section);
  const items = Array.isArray(map.value) ? (map.value as Typed[]) : [];
  for (let index = 0; index + 1 < items.length; index += 2) {
    entries[String(items[index].value)] = items[index + 1];
  }
  return entries;
}

/** The header with the given delivery count; durable, priority and ttl as the sender set them. */
function headerSection(sections: readonly RawSection[], deliveryCount: number): Typed {
  const original = sections.find((section) => section.code === SectionCode.header);
  const sent = original ? amqpMessage.decode(original.bytes) : undefined;
  const durable = typeof sent?.durable === 'boolean' ? sent.durable : false;
  const priority = typeof sent?.priority === 'number' ? sent.priority : 4;
  const ttl = typeof sent?.ttl === 'number' ? amqpTypes.wrap_uint(sent.ttl) : amqpTypes.wrap(null);
  return amqpTypes.described(
    amqpTypes.wrap_ulong(SectionCode.header),
    amqpTypes.wrap_list([
      amqpTypes.wrap_boolean(durable),
      amqpTypes.wrap_ubyte(priority),
      ttl,
      amqpTypes.wrap_boolean(deliveryCount === 0),
      amqpTypes.wrap_uint(deliveryCount),
    ]),
  );
}

function messageIdKeyOf(messageId: unknown): string | undefined {
  if (typeof messageId === 'string') return `string:${messageId}`;
  if (typeof messageId === 'number') return `number:${messageId}`;
  if (Buffer.isBuffer(messageId)) return `binary:${messageId.toString('hex')}`;
  return undefined;
}
