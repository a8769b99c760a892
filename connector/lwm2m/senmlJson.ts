/**
 * SenML JSON (RFC 8428, content format 110) as LwM2M 1.1+ uses it (Transport §7.4.4): a JSON array of records,
 * resolved by `senmlRecords`.
 */
import { parseJson } from './payloadFields';
import { ResourceValue } from './resourceValue';
import { SenmlRecord, senmlRecords } from './senmlRecords';

/** The records of a SenML JSON payload, with their times (see `SenmlRecord.time` for `nowMs`). */
export function senmlJsonRecords(payload: Buffer, nowMs?: number): SenmlRecord[] {
  return senmlRecords(parseJson(payload, 'SenML JSON'), 'SenML JSON', nowMs);
}

export function decodeSenmlJson(payload: Buffer): ResourceValue[] {
  return senmlJsonRecords(payload).map(({ path, value }) => ({ path, value }));
}
