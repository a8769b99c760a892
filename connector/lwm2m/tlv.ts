/**
 * OMA LwM2M TLV (content format 11542; LwM2M 1.0 §6.4.3, 1.1 Transport §7.4.3): decoding and encoding.
 *
 * Type byte: bits 7-6 identifier kind (00 object instance, 01 resource instance, 10 multiple resource,
 * 11 resource with value); bit 5 identifier length (0: 8 bits, 1: 16 bits); bits 4-3 length kind (00: length in
 * bits 2-0, 01/10/11: an 8/16/24-bit length follows the identifier); bits 2-0 the length when kind is 00.
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';

export const TlvKind = {
  OBJECT_INSTANCE: 0,
  RESOURCE_INSTANCE: 1,
  MULTIPLE_RESOURCE: 2,
  RESOURCE: 3,
} as const;
export type TlvKind = (typeof TlvKind)[keyof typeof TlvKind];

export interface TlvEntry {
  kind: TlvKind;
  id: number;
  /** The value bytes (for the two container kinds, the encoded children). */
  value: Buffer;
  /** Decoded children of an object instance or a multiple resource. */
  children: TlvEntry[];
}

const KIND_NAMES = ['object instance', 'resource instance', 'multiple resource', 'resource'];

/** Which kinds may nest in which (object instance > resource / multiple resource > resource instance). */
const ALLOWED_CHILDREN: Record<TlvKind, readonly TlvKind[]> = {
  [TlvKind.OBJECT_INSTANCE]: [TlvKind.RESOURCE, TlvKind.MULTIPLE_RESOURCE],
  [TlvKind.MULTIPLE_RESOURCE]: [TlvKind.RESOURCE_INSTANCE],
  [TlvKind.RESOURCE]: [],
  [TlvKind.RESOURCE_INSTANCE]: [],
};

/** Decodes a TLV payload into its top-level entries. Throws `Lwm2mPayloadError` naming what is wrong and where. */
export function decodeTlv(payload: Buffer): TlvEntry[] {
  return decodeLevel(payload, 0, undefined);
}

function decodeLevel(bytes: Buffer, base: number, parent: TlvKind | undefined): TlvEntry[] {
  const entries: TlvEntry[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const at = base + offset;
    const type = bytes[offset++];
    const kind = (type >> 6) as TlvKind;
    if (parent !== undefined && !ALLOWED_CHILDREN[parent].includes(kind)) {
      throw new Lwm2mPayloadError(`TLV ${KIND_NAMES[kind]} at byte ${at} cannot be inside a ${KIND_NAMES[parent]}`);
    }
    const idSize = type & 0x20 ? 2 : 1;
    const lengthKind = (type >> 3) & 0x03;
    const headerRest = idSize + lengthKind;
    if (offset + headerRest > bytes.length) throw new Lwm2mPayloadError(`TLV header at byte ${at} is truncated`);
    const id = idSize === 2 ? bytes.readUInt16BE(offset) : bytes[offset];
    offset += idSize;
    let length = type & 0x07;
    if (lengthKind > 0) {
      length = bytes.readUIntBE(offset, lengthKind);
      offset += lengthKind;
    }
    if (offset + length > bytes.length) {
      throw new Lwm2mPayloadError(`TLV ${KIND_NAMES[kind]} ${id} at byte ${at} claims ${length} bytes past the end`);
    }
    const value = bytes.subarray(offset, offset + length);
    const container = kind === TlvKind.OBJECT_INSTANCE || kind === TlvKind.MULTIPLE_RESOURCE;
    entries.push({ kind, id, value, children: container ? decodeLevel(value, base + offset, kind) : [] });
    offset += length;
  }
  return entries;
}

/** A resource (or resource instance) value found in a payload, by full path, as raw bytes. */
export interface TlvResourceValue {
  /** `/o/i/r` or `/o/i/r/ri`. */
  path: string;
  bytes: Buffer;
}

/**
 * The leaf values of a TLV payload answering a request on `requestPath` (`/o`, `/o/i`, `/o/i/r`): top-level object
 * instances belong to the requested object, resources to the requested instance, resource instances to the
 * requested resource.
 */
export function flattenTlv(entries: readonly TlvEntry[], requestPath: readonly number[]): TlvResourceValue[] {
  const [objectId, instanceId, resourceId] = requestPath;
  const values: TlvResourceValue[] = [];
  const resource = (instance: number, entry: TlvEntry) => {
    if (entry.kind === TlvKind.RESOURCE)
      values.push({ path: `/${objectId}/${instance}/${entry.id}`, bytes: entry.value });
    else {
      for (const child of entry.children) {
        values.push({ path: `/${objectId}/${instance}/${entry.id}/${child.id}`, bytes: child.value });
      }
    }
  };
  for (const entry of entries) {
    if (entry.kind === TlvKind.OBJECT_INSTANCE) {
      for (const child of entry.children) resource(entry.id, child);
    } else if (instanceId === undefined) {
      throw new Lwm2mPayloadError(`TLV ${KIND_NAMES[entry.kind]} ${entry.id} needs an object instance around it`);
    } else if (entry.kind === TlvKind.RESOURCE_INSTANCE) {
      if (resourceId === undefined) throw new Lwm2mPayloadError(`TLV resource instance ${entry.id} outside a resource`);
      values.push({ path: `/${objectId}/${instanceId}/${resourceId}/${entry.id}`, bytes: entry.value });
    } else {
      resource(instanceId, entry);
    }
  }
  return values;
}

/** Reads a TLV integer (signed big-endian, 1, 2, 4 or 8 bytes). */
export function tlvInteger(bytes: Buffer): number {
  switch (bytes.length) {
    case 1:
      return bytes.readInt8(0);
    case 2:
      return bytes.readInt16BE(0);
    case 4:
      return bytes.readInt32BE(0);
    case 8: {
      const value = bytes.readBigInt64BE(0);
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new Lwm2mPayloadError(`TLV integer ${value} is outside the safe integer range`);
      }
      return Number(value);
    }
    default:
      throw new Lwm2mPayloadError(`TLV integer of ${bytes.length} bytes (must be 1, 2, 4 or 8)`);
  }
}

/** Encodes one resource with value (for tests and writes in TLV). */
export function encodeTlvResource(id: number, value: Buffer): Buffer {
  return encodeEntry(TlvKind.RESOURCE, id, value);
}

export function encodeTlvEntry(kind: TlvKind, id: number, value: Buffer): Buffer {
  return encodeEntry(kind, id, value);
}

function encodeEntry(kind: TlvKind, id: number, value: Buffer): Buffer {
  const wideId = id > 0xff;
  const length = value.length;
  const lengthKind = length < 8 ? 0 : length <= 0xff ? 1 : length <= 0xffff ? 2 : 3;
  const header = Buffer.alloc(1 + (wideId ? 2 : 1) + lengthKind);
  header[0] = (kind << 6) | (wideId ? 0x20 : 0) | (lengthKind << 3) | (lengthKind === 0 ? length : 0);
  if (wideId) header.writeUInt16BE(id, 1);
  else header[1] = id;
  if (lengthKind > 0) header.writeUIntBE(length, 1 + (wideId ? 2 : 1), lengthKind);
  return Buffer.concat([header, value]);
}

/** The shortest TLV integer encoding of `value` (1, 2, 4 or 8 bytes, signed). */
export function tlvIntegerBytes(value: number): Buffer {
  if (value >= -0x80 && value <= 0x7f) return Buffer.from([value & 0xff]);
  if (value >= -0x8000 && value <= 0x7fff) {
    const b = Buffer.alloc(2);
    b.writeInt16BE(value);
    return b;
  }
  if (value >= -0x80000000 && value <= 0x7fffffff) {
    const b = Buffer.alloc(4);
    b.writeInt32BE(value);
    return b;
  }
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(value));
  return b;
}
