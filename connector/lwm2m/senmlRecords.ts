/**
 * SenML packs (RFC 8428) as LwM2M 1.1+ uses them (Transport §7.4.4 JSON, §7.4.5 CBOR): an array of records whose
 * full name (base name `bn` + name `n`) is the resource path, with the value in `v`, `vs`, `vb`, `vd` or `vlo`,
 * and a time from base time `bt` + time `t`. The same rules serve reads, notifies and Send (`POST /dp`).
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { checkedPath, isPlainObject, numberField, stringField } from './payloadFields';
import { Lwm2mValue } from './resourceValue';

/** One resolved SenML record. */
export interface SenmlRecord {
  /** `/o/i/r` or `/o/i/r/ri`. */
  path: string;
  value: Lwm2mValue;
  /**
   * When the value was measured, ms since the Unix epoch; absent when the record and its base have no time (the
   * caller uses the arrival time). SenML times below 2^28 s are relative to now (RFC 8428 §4.5.3): they resolve
   * against `nowMs`, and are left out when no `nowMs` is given.
   */
  time?: number;
}

export type SenmlFormat = 'SenML JSON' | 'SenML CBOR';

/** Times below this many seconds are relative to the current time (RFC 8428 §4.5.3). */
const RELATIVE_TIME_LIMIT_SECONDS = 2 ** 28;
const VALUE_FIELDS = ['v', 'vs', 'vb', 'vd', 'vlo'] as const;

/**
 * The records of a pack, in order, resolving base name, base time and base value; records without a value are
 * skipped. `pack` is the parsed JSON, or the CBOR item with its labels already mapped to the JSON names
 * (`vd` then being a byte string, not base64url). Throws `Lwm2mPayloadError` for anything RFC 8428 or LwM2M
 * does not allow, including an unknown must-understand field (name ending in `_`).
 */
export function senmlRecords(pack: unknown, format: SenmlFormat, nowMs?: number): SenmlRecord[] {
  if (!Array.isArray(pack)) throw new Lwm2mPayloadError(`${format} must be an array of records`);
  const records: SenmlRecord[] = [];
  let baseName = '';
  let baseTime = 0;
  let hasBaseTime = false;
  let baseValue = 0;
  pack.forEach((record: unknown, index: number) => {
    if (!isPlainObject(record)) throw new Lwm2mPayloadError(`${format} record ${index} is not an object`);
    const mustUnderstand = Object.keys(record).find((field) => field.endsWith('_'));
    if (mustUnderstand !== undefined) {
      throw new Lwm2mPayloadError(`${format} record ${index} has the unknown must-understand field ${mustUnderstand}`);
    }
    if (record.bn !== undefined) baseName = stringField(record, 'bn', index);
    if (record.bt !== undefined) {
      baseTime = numberField(record, 'bt', index);
      hasBaseTime = true;
    }
    if (record.bv !== undefined) baseValue = numberField(record, 'bv', index);
    const name = baseName + (record.n === undefined ? '' : stringField(record, 'n', index));
    const value = recordValue(record, index, baseValue, format);
    if (value === undefined) return;
    const path = checkedPath(name, `${format} record ${index}`);
    const hasTime = record.t !== undefined;
    const seconds = baseTime + (hasTime ? numberField(record, 't', index) : 0);
    const time = hasTime || hasBaseTime ? absoluteMs(seconds, nowMs) : undefined;
    records.push({ path, value, ...(time !== undefined && { time }) });
  });
  return records;
}

function absoluteMs(seconds: number, nowMs: number | undefined): number | undefined {
  if (seconds >= RELATIVE_TIME_LIMIT_SECONDS) return Math.round(seconds * 1000);
  return nowMs === undefined ? undefined : nowMs + Math.round(seconds * 1000);
}

function recordValue(
  record: Record<string, unknown>,
  index: number,
  baseValue: number,
  format: SenmlFormat,
): Lwm2mValue | undefined {
  const present = VALUE_FIELDS.filter((field) => record[field] !== undefined);
  if (present.length > 1) {
    throw new Lwm2mPayloadError(`${format} record ${index} has several values (${present.join(', ')})`);
  }
  switch (present[0]) {
    case undefined:
      return undefined;
    case 'v':
      return { type: 'number', number: baseValue + numberField(record, 'v', index) };
    case 'vb':
      if (typeof record.vb !== 'boolean')
        throw new Lwm2mPayloadError(`${format} record ${index}: vb must be a boolean`);
      return { type: 'boolean', boolean: record.vb };
    case 'vd':
      if (format === 'SenML CBOR') {
        if (!Buffer.isBuffer(record.vd)) throw new Lwm2mPayloadError(`${format} record ${index}: vd must be bytes`);
        return { type: 'bytes', bytes: record.vd };
      }
      return { type: 'bytes', bytes: Buffer.from(stringField(record, 'vd', index), 'base64url') };
    default:
      return { type: 'string', string: stringField(record, present[0], index) };
  }
}
