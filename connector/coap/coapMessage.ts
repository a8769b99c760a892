/**
 * The CoAP message format (RFC 7252 §3): a strict decoder and an encoder.
 *
 * Strict means every message format error the RFC names is rejected with a `CoapFormatError` that says what is
 * wrong (reserved token lengths, an option running past the datagram, the reserved option nibble 15, an option
 * number past 65535, a payload marker with no payload, a non-empty "Empty" message), so nothing malformed reaches
 * the layers above. Options are numeric and kept in wire order (which is ascending by number).
 */
import { MAX_OPTION_EXTENDED_VALUE, MAX_OPTION_NUMBER, MAX_TOKEN_LENGTH } from './coapParameters';

/** Message types (§3: 2-bit T field). */
export const MessageType = { CON: 0, NON: 1, ACK: 2, RST: 3 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Codes as the 8-bit wire value: class << 5 | detail (§12.1). */
export const Code = {
  EMPTY: 0x00,
  GET: 0x01,
  POST: 0x02,
  PUT: 0x03,
  DELETE: 0x04,
  CREATED: 0x41,
  DELETED: 0x42,
  VALID: 0x43,
  CHANGED: 0x44,
  CONTENT: 0x45,
  /** 2.31 Continue (RFC 7959 §2.9.1): a Block1 block was taken, send the next. */
  CONTINUE: 0x5f,
  BAD_REQUEST: 0x80,
  UNAUTHORIZED: 0x81,
  BAD_OPTION: 0x82,
  FORBIDDEN: 0x83,
  NOT_FOUND: 0x84,
  METHOD_NOT_ALLOWED: 0x85,
  NOT_ACCEPTABLE: 0x86,
  /** 4.08 Request Entity Incomplete (RFC 7959 §2.9.2): a Block1 block with no transfer to continue. */
  REQUEST_ENTITY_INCOMPLETE: 0x88,
  PRECONDITION_FAILED: 0x8c,
  REQUEST_ENTITY_TOO_LARGE: 0x8d,
  UNSUPPORTED_CONTENT_FORMAT: 0x8f,
  /** 4.29 Too Many Requests (RFC 8516), with Max-Age = seconds until the client may retry. */
  TOO_MANY_REQUESTS: 0x9d,
  INTERNAL_SERVER_ERROR: 0xa0,
  SERVICE_UNAVAILABLE: 0xa3,
} as const;

/** Option numbers (§5.10, RFC 7641, RFC 7959). Odd numbers are critical (§5.4.1). */
export const OptionNumber = {
  IF_MATCH: 1,
  URI_HOST: 3,
  ETAG: 4,
  IF_NONE_MATCH: 5,
  OBSERVE: 6,
  URI_PORT: 7,
  LOCATION_PATH: 8,
  URI_PATH: 11,
  CONTENT_FORMAT: 12,
  MAX_AGE: 14,
  URI_QUERY: 15,
  ACCEPT: 17,
  LOCATION_QUERY: 20,
  BLOCK2: 23,
  BLOCK1: 27,
  SIZE2: 28,
  PROXY_URI: 35,
  PROXY_SCHEME: 39,
  SIZE1: 60,
} as const;

export interface CoapOption {
  number: number;
  value: Buffer;
}

export interface CoapMessage {
  type: MessageType;
  /** class << 5 | detail; see `Code`. */
  code: number;
  /** 0 to 65535. */
  messageId: number;
  /** 0 to 8 bytes. */
  token: Buffer;
  /** Ascending by number (the encoder sorts; the decoder yields wire order, which is ascending). */
  options: CoapOption[];
  payload: Buffer;
}

/** A datagram that is not a well-formed CoAP message. `header` is set when the 4-byte header itself was readable. */
export class CoapFormatError extends Error {
  constructor(
    message: string,
    readonly header?: { type: MessageType; messageId: number },
  ) {
    super(message);
    this.name = 'CoapFormatError';
  }
}

const EMPTY = Buffer.alloc(0);
const PAYLOAD_MARKER = 0xff;

export function codeClass(code: number): number {
  return code >> 5;
}

export function isRequestCode(code: number): boolean {
  return code !== Code.EMPTY && codeClass(code) === 0;
}

export function isResponseCode(code: number): boolean {
  const cls = codeClass(code);
  return cls === 2 || cls === 4 || cls === 5;
}

export function isSuccessCode(code: number): boolean {
  return codeClass(code) === 2;
}

/** `2.05` style text of a code. */
export function formatCode(code: number): string {
  return `${code >> 5}.${String(code & 0x1f).padStart(2, '0')}`;
}

/** Decodes one datagram. Throws `CoapFormatError` naming the first problem found. */
export function decodeMessage(datagram: Buffer): CoapMessage {
  if (datagram.length < 4) throw new CoapFormatError(`datagram of ${datagram.length} bytes is shorter than the header`);
  const first = datagram[0];
  const version = first >> 6;
  if (version !== 1) throw new CoapFormatError(`unsupported CoAP version ${version}`);
  const type = ((first >> 4) & 0x03) as MessageType;
  const tokenLength = first & 0x0f;
  const code = datagram[1];
  const messageId = datagram.readUInt16BE(2);
  const header = { type, messageId };
  if (tokenLength > MAX_TOKEN_LENGTH) throw new CoapFormatError(`reserved token length ${tokenLength}`, header);
  if (code === Code.EMPTY) {
    if (datagram.length !== 4 || tokenLength !== 0) {
      throw new CoapFormatError('an Empty message (code 0.00) must be the 4-byte header alone', header);
    }
    return { type, code, messageId, token: EMPTY, options: [], payload: EMPTY };
  }
  if (4 + tokenLength > datagram.length) throw new CoapFormatError('token runs past the end of the datagram', header);
  const token = datagram.subarray(4, 4 + tokenLength);
  const options: CoapOption[] = [];
  let offset = 4 + tokenLength;
  let number = 0;
  while (offset < datagram.length) {
    const byte = datagram[offset++];
    if (byte === PAYLOAD_MARKER) {
      if (offset === datagram.length) throw new CoapFormatError('payload marker followed by no payload', header);
      return { type, code, messageId, token, options, payload: datagram.subarray(offset) };
    }
    let delta = byte >> 4;
    let length = byte & 0x0f;
    if (delta === 15 || length === 15) throw new CoapFormatError('reserved option nibble 15', header);
    [delta, offset] = extended(datagram, delta, offset, header);
    [length, offset] = extended(datagram, length, offset, header);
    number += delta;
    if (number > MAX_OPTION_NUMBER) {
      throw new CoapFormatError(`option number ${number} is past ${MAX_OPTION_NUMBER}`, header);
    }
    if (offset + length > datagram.length) {
      throw new CoapFormatError(`option ${number} (${length} bytes) runs past the end of the datagram`, header);
    }
    options.push({ number, value: datagram.subarray(offset, offset + length) });
    offset += length;
  }
  return { type, code, messageId, token, options, payload: EMPTY };
}

/** Reads an option delta or length extension (§3.1: nibble 13 -> +1 byte + 13, 14 -> +2 bytes + 269). */
function extended(
  datagram: Buffer,
  nibble: number,
  offset: number,
  header: { type: MessageType; messageId: number },
): [number, number] {
  if (nibble < 13) return [nibble, offset];
  const size = nibble === 13 ? 1 : 2;
  if (offset + size > datagram.length) throw new CoapFormatError('option header runs past the end', header);
  return nibble === 13 ? [datagram[offset] + 13, offset + 1] : [datagram.readUInt16BE(offset) + 269, offset + 2];
}

/**
 * Encodes a message. Options are sorted by number (stable, so repeated options keep their order). Throws a
 * `RangeError` for what the format cannot carry: a token over 8 bytes, an option number outside 0-65535, an option
 * value over 65804 bytes.
 */
export function encodeMessage(message: CoapMessage): Buffer {
  const options = [...message.options].sort((a, b) => a.number - b.number);
  return encodeSorted(message, options, encodedSize(message, options));
}

/**
 * Encodes a response in at most `maxSize` bytes (below 65804), or returns undefined when it cannot fit. Only a
 * diagnostic payload (`isDiagnosticPayload`) is shortened to fit, cut at a UTF-8 character boundary; any other part
 * that is too big means undefined. Throws for a token over 8 bytes or an option number outside 0-65535.
 */
export function encodeWithin(message: CoapMessage, maxSize: number): Buffer | undefined {
  const options = [...message.options].sort((a, b) => a.number - b.number);
  const size = encodedSize(message, options);
  if (size <= maxSize) return encodeSorted(message, options, size);
  if (!isDiagnosticPayload(message)) return undefined;
  const payload = utf8Prefix(message.payload, message.payload.length - (size - maxSize));
  const shortened = { ...message, payload };
  const shortenedSize = encodedSize(shortened, options);
  return shortenedSize <= maxSize ? encodeSorted(shortened, options, shortenedSize) : undefined;
}

/**
 * Whether the payload is a diagnostic message (§5.5.2): a client or server error (4.xx, 5.xx) without a
 * Content-Format option carries human-readable UTF-8 text, which may be cut without changing the response's meaning.
 */
export function isDiagnosticPayload(message: CoapMessage): boolean {
  const cls = codeClass(message.code);
  return (cls === 4 || cls === 5) && !message.options.some((o) => o.number === OptionNumber.CONTENT_FORMAT);
}

/** The longest prefix of UTF-8 `text` of at most `maxBytes` bytes that ends at a character boundary. */
function utf8Prefix(text: Buffer, maxBytes: number): Buffer {
  if (maxBytes >= text.length) return text;
  let end = Math.max(0, maxBytes);
  // A continuation byte (10xxxxxx) at the cut means the cut splits a character: back off to its first byte.
  while (end > 0 && (text[end] & 0xc0) === 0x80) end--;
  return text.subarray(0, end);
}

/** The encoded size of a message whose options are sorted by number; throws for a bad token or option number. */
function encodedSize(message: CoapMessage, options: readonly CoapOption[]): number {
  const { token, payload } = message;
  if (token.length > MAX_TOKEN_LENGTH) throw new RangeError(`token of ${token.length} bytes exceeds 8`);
  let size = 4 + token.length + (payload.length > 0 ? 1 + payload.length : 0);
  let previous = 0;
  for (const option of options) {
    if (!Number.isInteger(option.number) || option.number < 0 || option.number > MAX_OPTION_NUMBER) {
      throw new RangeError(`option number ${option.number} is outside 0-${MAX_OPTION_NUMBER}`);
    }
    size += 1 + extensionSize(option.number - previous) + extensionSize(option.value.length) + option.value.length;
    previous = option.number;
  }
  return size;
}

function encodeSorted(message: CoapMessage, options: readonly CoapOption[], size: number): Buffer {
  const { token, payload } = message;
  const buffer = Buffer.allocUnsafe(size);
  buffer[0] = 0x40 | (message.type << 4) | token.length;
  buffer[1] = message.code;
  buffer.writeUInt16BE(message.messageId, 2);
  token.copy(buffer, 4);
  let offset = 4 + token.length;
  let previous = 0;
  for (const option of options) {
    const delta = option.number - previous;
    const length = option.value.length;
    if (length > MAX_OPTION_EXTENDED_VALUE) {
      throw new RangeError(`option ${option.number} value of ${length} bytes is too long to encode`);
    }
    buffer[offset++] = (nibble(delta) << 4) | nibble(length);
    offset = writeExtension(buffer, offset, delta);
    offset = writeExtension(buffer, offset, length);
    option.value.copy(buffer, offset);
    offset += length;
    previous = option.number;
  }
  if (payload.length > 0) {
    buffer[offset++] = PAYLOAD_MARKER;
    payload.copy(buffer, offset);
  }
  return buffer;
}

function extensionSize(value: number): number {
  return value < 13 ? 0 : value < 269 ? 1 : 2;
}

function nibble(value: number): number {
  return value < 13 ? value : value < 269 ? 13 : 14;
}

function writeExtension(buffer: Buffer, offset: number, value: number): number {
  if (value < 13) return offset;
  if (value < 269) {
    buffer[offset] = value - 13;
    return offset + 1;
  }
  buffer.writeUInt16BE(value - 269, offset);
  return offset + 2;
}

/** An Empty ACK or RST (4 bytes) for a message ID. */
export function encodeEmpty(type: typeof MessageType.ACK | typeof MessageType.RST, messageId: number): Buffer {
  const buffer = Buffer.allocUnsafe(4);
  buffer[0] = 0x40 | (type << 4);
  buffer[1] = Code.EMPTY;
  buffer.writeUInt16BE(messageId, 2);
  return buffer;
}

/** A uint option value in the fewest bytes (§3.2: 0 is the empty value). */
export function uintOption(number: number, value: number): CoapOption {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return { number, value: Buffer.from(bytes) };
}

export function stringOption(number: number, value: string): CoapOption {
  return { number, value: Buffer.from(value, 'utf8') };
}

/** The uint value of the first option with this number, or undefined. Values over 4 bytes are not uints here. */
export function readUintOption(message: CoapMessage, number: number): number | undefined {
  const option = message.options.find((o) => o.number === number);
  if (!option) return undefined;
  if (option.value.length > 4) return Number.NaN;
  let value = 0;
  for (const byte of option.value) value = value * 256 + byte;
  return value;
}

export function readStringOptions(message: CoapMessage, number: number): string[] {
  const values: string[] = [];
  for (const option of message.options) if (option.number === number) values.push(option.value.toString('utf8'));
  return values;
}

/** Path segments (`Uri-Path`) as one string without a leading slash, for example `rd/5a3f`. */
export function uriPath(message: CoapMessage): string[] {
  return readStringOptions(message, OptionNumber.URI_PATH);
}

/** Critical options (odd numbers, §5.4.1) that are not in `known`: a request carrying one gets 4.02. */
export function unknownCriticalOptions(message: CoapMessage, known: ReadonlySet<number>): number[] {
  return message.options.filter((o) => o.number % 2 === 1 && !known.has(o.number)).map((o) => o.number);
}
