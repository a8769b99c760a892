/**
 * Encoders for what the simulated device sends (text/plain, opaque, CBOR, SenML JSON and CBOR, TLV, LwM2M CBOR,
 * link-format) and the text/opaque decoder for what it accepts in a Write. Pure functions, no I/O.
 */
import { Encoder } from 'cbor-x';
import { ContentFormat } from './protocol';
import { formatPath, Lwm2mPath, ResourceDefinition, ResourceValue } from './deviceResources';

export interface ResourceReading {
  readonly definition: ResourceDefinition;
  readonly value: ResourceValue;
}

/**
 * Encodes the readings found at `path` (one resource, or all readable ones of an instance or object) in
 * `format`; undefined when the format cannot carry them (the caller answers 4.06 Not Acceptable).
 */
export function encodeReadings(
  path: Lwm2mPath,
  readings: readonly ResourceReading[],
  format: number,
): Buffer | undefined {
  const single = path.resourceId !== undefined;
  switch (format) {
    case ContentFormat.TEXT:
      return single && readings.length === 1 ? encodeText(readings[0]) : undefined;
    case ContentFormat.OPAQUE:
      return single && readings.length === 1 && Buffer.isBuffer(readings[0].value) ? readings[0].value : undefined;
    case ContentFormat.CBOR:
      return single && readings.length === 1 ? cbor.encode(readings[0].value) : undefined;
    case ContentFormat.SENML_JSON:
      return encodeSenmlJson(path, readings);
    case ContentFormat.SENML_CBOR:
      return encodeSenmlCbor(path, readings);
    case ContentFormat.TLV:
      return encodeTlv(path, readings);
    case ContentFormat.LWM2M_CBOR:
      return encodeLwm2mCbor(readings);
    default:
      return undefined;
  }
}

/** The format used when a request has no Accept option; a device that prefers SenML CBOR always answers in it. */
export function defaultFormat(path: Lwm2mPath, readings: readonly ResourceReading[], prefersSenmlCbor = false): number {
  if (prefersSenmlCbor) return ContentFormat.SENML_CBOR;
  if (path.resourceId === undefined) return ContentFormat.SENML_JSON;
  return readings[0]?.definition.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
}

function encodeText(reading: ResourceReading): Buffer | undefined {
  if (Buffer.isBuffer(reading.value)) return undefined;
  return Buffer.from(String(reading.value), 'utf8');
}

/** SenML JSON as LwM2M 1.1 §7.4.4 uses it: base name is the request path, names are relative ids. */
function encodeSenmlJson(path: Lwm2mPath, readings: readonly ResourceReading[]): Buffer {
  const requestPath = formatPath(path);
  const single = path.resourceId !== undefined;
  const baseName = single ? requestPath : `${requestPath}/`;
  const records = readings.map((reading, index) => {
    const record: Record<string, string | number> = {};
    if (index === 0) record.bn = baseName;
    if (!single) record.n = reading.definition.path.slice(baseName.length);
    const value = reading.value;
    if (Buffer.isBuffer(value)) record.vd = value.toString('base64url');
    else if (typeof value === 'number') record.v = value;
    else record.vs = value;
    return record;
  });
  return Buffer.from(JSON.stringify(records), 'utf8');
}

/**
 * A Send pack (LwM2M 1.1 §6.4.3) in SenML JSON (110) or SenML CBOR (112): one record per reading, named by its full
 * path, the first with the base time `baseTimeSeconds` (seconds since the epoch, fractional) that dates them all.
 */
export function encodeSendPack(
  readings: readonly ResourceReading[],
  format: typeof ContentFormat.SENML_JSON | typeof ContentFormat.SENML_CBOR,
  baseTimeSeconds: number,
): Buffer {
  if (format === ContentFormat.SENML_JSON) {
    const records = readings.map((reading, index) => ({
      ...(index === 0 && { bt: baseTimeSeconds }),
      n: reading.definition.path,
      ...jsonValue(reading.value),
    }));
    return Buffer.from(JSON.stringify(records), 'utf8');
  }
  const records = readings.map((reading, index) => {
    const record = new Map<number, string | number | Buffer>();
    if (index === 0) record.set(SenmlLabel.BASE_TIME, baseTimeSeconds);
    record.set(SenmlLabel.NAME, reading.definition.path);
    const value = reading.value;
    if (Buffer.isBuffer(value)) record.set(SenmlLabel.DATA_VALUE, value);
    else if (typeof value === 'number') record.set(SenmlLabel.VALUE, value);
    else record.set(SenmlLabel.STRING_VALUE, value);
    return record;
  });
  return cbor.encode(records);
}

function jsonValue(value: ResourceValue): { vd: string } | { v: number } | { vs: string } {
  if (Buffer.isBuffer(value)) return { vd: value.toString('base64url') };
  return typeof value === 'number' ? { v: value } : { vs: value };
}

/** Plain CBOR: integers as integers (above 32 bits as float64, still exact), Buffers as byte strings, Maps as maps. */
const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });

/** SenML CBOR labels (RFC 8428 Table 6) the simulator sends. */
const SenmlLabel = { BASE_TIME: -3, BASE_NAME: -2, NAME: 0, VALUE: 2, STRING_VALUE: 3, DATA_VALUE: 8 } as const;

/** SenML CBOR (LwM2M 1.1 §7.4.5): the SenML JSON records with integer labels and data values as byte strings. */
function encodeSenmlCbor(path: Lwm2mPath, readings: readonly ResourceReading[]): Buffer {
  const requestPath = formatPath(path);
  const single = path.resourceId !== undefined;
  const baseName = single ? requestPath : `${requestPath}/`;
  const records = readings.map((reading, index) => {
    const record = new Map<number, string | number | Buffer>();
    if (index === 0) record.set(SenmlLabel.BASE_NAME, baseName);
    if (!single) record.set(SenmlLabel.NAME, reading.definition.path.slice(baseName.length));
    const value = reading.value;
    if (Buffer.isBuffer(value)) record.set(SenmlLabel.DATA_VALUE, value);
    else if (typeof value === 'number') record.set(SenmlLabel.VALUE, value);
    else record.set(SenmlLabel.STRING_VALUE, value);
    return record;
  });
  return cbor.encode(records);
}

/** LwM2M CBOR (LwM2M 1.2 §7.4.7): `{object: {instance: {resource: value}}}` from the root. */
function encodeLwm2mCbor(readings: readonly ResourceReading[]): Buffer {
  const objects = new Map<number, Map<number, Map<number, ResourceValue>>>();
  for (const { definition, value } of readings) {
    const instances = objects.get(definition.objectId) ?? new Map<number, Map<number, ResourceValue>>();
    objects.set(definition.objectId, instances);
    const resources = instances.get(definition.instanceId) ?? new Map<number, ResourceValue>();
    instances.set(definition.instanceId, resources);
    resources.set(definition.resourceId, value);
  }
  return cbor.encode(objects);
}

/** TLV type bits (LwM2M 1.1 §7.4.3, bits 7-6 of the type byte). */
const TlvType = { OBJECT_INSTANCE: 0b00, RESOURCE_WITH_VALUE: 0b11 } as const;

function encodeTlv(path: Lwm2mPath, readings: readonly ResourceReading[]): Buffer {
  const resourceTlv = (reading: ResourceReading) =>
    tlv(TlvType.RESOURCE_WITH_VALUE, reading.definition.resourceId, tlvValue(reading.value));
  if (path.instanceId !== undefined) return Buffer.concat(readings.map(resourceTlv));
  const instanceIds = [...new Set(readings.map((reading) => reading.definition.instanceId))];
  return Buffer.concat(
    instanceIds.map((instanceId) =>
      tlv(
        TlvType.OBJECT_INSTANCE,
        instanceId,
        Buffer.concat(readings.filter((r) => r.definition.instanceId === instanceId).map(resourceTlv)),
      ),
    ),
  );
}

function tlvValue(value: ResourceValue): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  // Integers and times: the shortest of 1, 2, 4 or 8 bytes, two's complement, big-endian.
  const bigValue = BigInt(value);
  for (const bytes of [1, 2, 4, 8]) {
    const limit = 1n << BigInt(bytes * 8 - 1);
    if (bigValue >= -limit && bigValue < limit) {
      const buffer = Buffer.alloc(8);
      buffer.writeBigInt64BE(bigValue);
      return buffer.subarray(8 - bytes);
    }
  }
  throw new RangeError(`integer ${value} does not fit 8 bytes`);
}

function tlv(type: number, id: number, value: Buffer): Buffer {
  const wideId = id > 0xff;
  const lengthBytes = value.length < 8 ? 0 : value.length < 0x100 ? 1 : value.length < 0x10000 ? 2 : 3;
  const header = Buffer.alloc(1 + (wideId ? 2 : 1) + lengthBytes);
  header[0] = (type << 6) | (wideId ? 0x20 : 0) | (lengthBytes << 3) | (lengthBytes === 0 ? value.length : 0);
  if (wideId) header.writeUInt16BE(id, 1);
  else header[1] = id;
  if (lengthBytes > 0) header.writeUIntBE(value.length, wideId ? 3 : 2, lengthBytes);
  return Buffer.concat([header, value]);
}

/** One CoRE link (RFC 6690) with LwM2M attributes, as Discover and Register send them. */
export interface Link {
  readonly path: string;
  readonly attributes?: Readonly<Record<string, string | number>>;
}

export function encodeLinkFormat(links: readonly Link[]): Buffer {
  return Buffer.from(
    links
      .map(
        (link) =>
          `<${link.path}>` +
          Object.entries(link.attributes ?? {})
            .map(([name, value]) => `;${name}=${value}`)
            .join(''),
      )
      .join(','),
    'utf8',
  );
}

export type DecodedWrite = { ok: true; value: ResourceValue } | { ok: false; reason: string };

/** Decodes a Write payload for one resource; text/plain for text types, opaque for opaque ones. */
export function decodeWrite(definition: ResourceDefinition, payload: Buffer, format: number): DecodedWrite {
  if (definition.type === 'opaque') {
    return format === ContentFormat.OPAQUE
      ? { ok: true, value: Buffer.from(payload) }
      : { ok: false, reason: `${definition.name} is opaque: send it as application/octet-stream (42)` };
  }
  if (format !== ContentFormat.TEXT) {
    return { ok: false, reason: `${definition.name} takes text/plain (0); got content format ${format}` };
  }
  const text = payload.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(payload)) {
    return { ok: false, reason: `${definition.name}: payload is not valid UTF-8` };
  }
  if (definition.type === 'integer' || definition.type === 'time') {
    if (!/^-?\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
      return { ok: false, reason: `${definition.name} must be an integer; got "${text.slice(0, 40)}"` };
    }
    return { ok: true, value: Number(text) };
  }
  return { ok: true, value: text };
}
