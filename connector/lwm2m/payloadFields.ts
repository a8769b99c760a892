/**
 * Field checks shared by the JSON-shaped LwM2M formats (SenML JSON and CBOR records, LwM2M JSON); each failure is an
 * `Lwm2mPayloadError` naming the record and field.
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';

const LWM2M_PATH = /^\/\d{1,5}(?:\/\d{1,5}){0,3}$/;

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
