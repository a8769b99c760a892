/**
 * CBOR (RFC 8949) data items from device payloads, for the CBOR-based LwM2M content formats (60, 112, 11544).
 *
 * A payload is first checked without recursion: well-formed, one data item and nothing after it, every declared
 * length within the payload (so a hostile length allocates nothing), nesting at most `MAX_CBOR_DEPTH`, text strings
 * strict UTF-8, no indefinite-length strings, and no tag but 1 (epoch time). Only then does cbor-x (its decoder
 * build without `eval` or the native addon) build the value, which `plainCbor` maps to plain values. Anything
 * else throws `Lwm2mPayloadError`; a payload can never crash the decoder.
 */
import { Decoder } from 'cbor-x/decode-no-eval';
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { Lwm2mValue } from './resourceValue';

/** Deepest nesting of arrays, maps and tags accepted (SenML needs 2, LwM2M CBOR at most 5). */
export const MAX_CBOR_DEPTH = 16;
/** Tag 1: epoch-based date/time (RFC 8949 §3.4.2), which LwM2M CBOR may use for Time resources. */
const TAG_EPOCH_TIME = 1;

/** A decoded CBOR item: maps keep their keys' types (SenML CBOR labels are integers, LwM2M CBOR keys arrays). */
export type CborValue = number | string | boolean | null | Buffer | CborValue[] | Map<CborValue, CborValue>;

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes the one CBOR data item of `payload`; `what` names the format in error messages. */
export function decodeCbor(payload: Buffer, what: string): CborValue {
  checkWellFormed(payload, what);
  let item: unknown;
  try {
    item = decoder.decode(payload);
  } catch (error) {
    throw new Lwm2mPayloadError(`${what} payload is not CBOR: ${(error as Error).message}`);
  }
  return plainCbor(item, what);
}

/**
 * One resource value as the CBOR format (60) and LwM2M CBOR leaves carry it (LwM2M 1.1 Transport §7.4.5): integers
 * and floats as numbers (a tag-1 time as epoch seconds), text as a string, Opaque as bytes, booleans.
 */
export function cborResourceValue(item: CborValue, what: string): Lwm2mValue {
  if (typeof item === 'number') return { type: 'number', number: item };
  if (typeof item === 'string') return { type: 'string', string: item };
  if (typeof item === 'boolean') return { type: 'boolean', boolean: item };
  if (Buffer.isBuffer(item)) return { type: 'bytes', bytes: item };
  const got = item === null ? 'null' : Array.isArray(item) ? 'an array' : 'a map';
  throw new Lwm2mPayloadError(`${what}: a resource value cannot be ${got}`);
}

/** Maps what cbor-x builds to `CborValue`: byte strings copied, bigints to numbers, tag 1 to epoch seconds. */
function plainCbor(item: unknown, what: string): CborValue {
  if (item === null || typeof item === 'number' || typeof item === 'string' || typeof item === 'boolean') return item;
  if (item === undefined) return null;
  if (typeof item === 'bigint') return Number(item);
  if (item instanceof Uint8Array) return Buffer.from(item);
  if (item instanceof Date) return item.getTime() / 1000;
  if (Array.isArray(item)) return item.map((element) => plainCbor(element, what));
  if (item instanceof Map) {
    const map = new Map<CborValue, CborValue>();
    for (const [key, value] of item) map.set(plainCbor(key, what), plainCbor(value, what));
    return map;
  }
  throw new Lwm2mPayloadError(`${what} payload holds an unsupported CBOR item`);
}

interface OpenContainer {
  /** Data items still expected; Infinity for an indefinite-length container (ended by a break). */
  remaining: number;
  /** Items read so far, to check that an indefinite map has whole key/value pairs. */
  read: number;
  isMap: boolean;
}

/** Throws unless `bytes` is exactly one well-formed CBOR data item within the limits above. */
function checkWellFormed(bytes: Buffer, what: string): void {
  const fail = (reason: string, at: number): never => {
    throw new Lwm2mPayloadError(`${what} payload is not valid CBOR: ${reason} at byte ${at}`);
  };
  const open: OpenContainer[] = [];
  let position = 0;
  let afterTag = false;
  if (bytes.length === 0) fail('no data item', 0);
  do {
    const start = position;
    if (position >= bytes.length) fail('unexpected end', position);
    const initial = bytes[position++];
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info === 31) {
      if (major === 7) {
        const top = open[open.length - 1];
        if (afterTag || top === undefined || top.remaining !== Infinity) fail('unexpected break', start);
        if (top.isMap && top.read % 2 !== 0) fail('map without a value for its last key', start);
        open.pop();
        itemDone(open);
        continue;
      }
      if (major !== 4 && major !== 5) fail('indefinite length is only supported for arrays and maps', start);
      push(open, { remaining: Infinity, read: 0, isMap: major === 5 }, start, fail);
      afterTag = false;
      continue;
    }
    let argument: number;
    if (info < 24) argument = info;
    else if (info <= 27) {
      const size = 1 << (info - 24);
      if (position + size > bytes.length) fail('unexpected end', position);
      // Above 2^53 the exact value does not matter: it is more than any payload length and not a tag we accept.
      argument = size === 8 ? Number(bytes.readBigUInt64BE(position)) : bytes.readUIntBE(position, size);
      position += size;
    } else argument = fail('reserved additional information', start);
    const left = bytes.length - position;
    switch (major) {
      case 2:
      case 3:
        if (argument > left) fail(`string of ${argument} bytes with ${left} left`, start);
        if (major === 3) {
          try {
            strictUtf8.decode(bytes.subarray(position, position + argument));
          } catch {
            fail('text string is not UTF-8', start);
          }
        }
        position += argument;
        break;
      case 4:
      case 5: {
        const items = major === 5 ? argument * 2 : argument;
        // Every item takes at least one byte, so a count beyond the bytes left is a lie.
        if (items > left) fail(`${items} items declared with ${left} bytes left`, start);
        if (items > 0) {
          push(open, { remaining: items, read: 0, isMap: major === 5 }, start, fail);
          afterTag = false;
          continue;
        }
        break;
      }
      case 6:
        if (argument !== TAG_EPOCH_TIME) fail(`tag ${argument} is not supported`, start);
        if (afterTag) fail('nested tags', start);
        afterTag = true;
        continue;
      case 7:
        if (info === 24 && argument < 32) fail('simple value in two bytes below 32', start);
        break;
      default: // 0 and 1: integers, the argument is the value
        break;
    }
    afterTag = false;
    itemDone(open);
  } while (open.length > 0 || afterTag);
  if (position !== bytes.length) fail(`${bytes.length - position} bytes after the data item`, position);

  function itemDone(stack: OpenContainer[]): void {
    for (let top = stack[stack.length - 1]; top !== undefined; top = stack[stack.length - 1]) {
      top.read++;
      if (top.remaining === Infinity) return;
      if (--top.remaining > 0) return;
      stack.pop();
    }
  }
}

function push(open: OpenContainer[], container: OpenContainer, at: number, fail: (r: string, a: number) => never) {
  if (open.length >= MAX_CBOR_DEPTH) fail(`nesting deeper than ${MAX_CBOR_DEPTH}`, at);
  open.push(container);
}
