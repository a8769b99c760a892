/**
 * SenML JSON (RFC 8428, content format 110) as LwM2M 1.1+ uses it (Transport §7.4.4): an array of records whose
 * full name (base name `bn` + name `n`) is the resource path, with the value in `v`, `vs`, `vb`, `vd` or `vlo`.
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { Lwm2mValue, ResourceValue } from './resourceValue';

const LWM2M_PATH = /^\/\d{1,5}(?:\/\d{1,5}){0,3}$/;

export function decodeSenmlJson(payload: Buffer): ResourceValue[] {
  const records = parseJson(payload, 'SenML JSON');
  if (!Array.isArray(records)) throw new Lwm2mPayloadError('SenML JSON must be an array of records');
  const values: ResourceValue[] = [];
  let baseName = '';
  let baseValue = 0;
  records.forEach((record: unknown, index: number) => {
    if (!isPlainObject(record)) throw new Lwm2mPayloadError(`SenML record ${index} is not an object`);
    if (record.bn !== undefined) baseName = stringField(record, 'bn', index);
    if (record.bv !== undefined) baseValue = numberField(record, 'bv', index);
    const name = baseName + (record.n === undefined ? '' : stringField(record, 'n', index));
    const value = senmlValue(record, index, baseValue);
    if (value === undefined) return;
    values.push({ path: checkedPath(name, `SenML record ${index}`), value });
  });
  return values;
}

function senmlValue(record: Record<string, unknown>, index: number, baseValue: number): Lwm2mValue | undefined {
  const present = ['v', 'vs', 'vb', 'vd', 'vlo'].filter((field) => record[field] !== undefined);
  if (present.length > 1)
    throw new Lwm2mPayloadError(`SenML record ${index} has several values (${present.join(', ')})`);
  switch (present[0]) {
    case undefined:
      return undefined;
    case 'v':
      return { type: 'number', number: baseValue + numberField(record, 'v', index) };
    case 'vb':
      if (typeof record.vb !== 'boolean') throw new Lwm2mPayloadError(`SenML record ${index}: vb must be a boolean`);
      return { type: 'boolean', boolean: record.vb };
    case 'vd':
      return { type: 'bytes', bytes: Buffer.from(stringField(record, 'vd', index), 'base64url') };
    default:
      return { type: 'string', string: stringField(record, present[0], index) };
  }
}

/** Parses JSON from a payload, as strict UTF-8. */
export function parseJson(payload: Buffer, format: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
  } catch {
    throw new Lwm2mPayloadError(`${format} payload is not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Lwm2mPayloadError(`${format} payload is not JSON: ${(error as Error).message}`);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(record: Record<string, unknown>, field: string, index: number): string {
  const value = record[field];
  if (typeof value !== 'string') throw new Lwm2mPayloadError(`record ${index}: ${field} must be a string`);
  return value;
}

export function numberField(record: Record<string, unknown>, field: string, index: number): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Lwm2mPayloadError(`record ${index}: ${field} must be a finite number`);
  }
  return value;
}

/** A full name as an LwM2M path `/o/i/r[/ri]` (a trailing slash, as in base names, is dropped). */
export function checkedPath(name: string, where: string): string {
  const path = name.length > 1 && name.endsWith('/') ? name.slice(0, -1) : name;
  if (!LWM2M_PATH.test(path)) throw new Lwm2mPayloadError(`${where}: name "${name}" is not an LwM2M path`);
  return path;
}
