/**
 * SenML CBOR (RFC 8428 §6, content format 112) as LwM2M 1.1+ uses it (Transport §7.4.5): a CBOR array of maps whose
 * labels are integers (`-2` bn, `0` n, `2` v...) or text (`vlo`, extensions), resolved by `senmlRecords`.
 */
import { CborValue, decodeCbor } from './cbor';
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { ResourceValue } from './resourceValue';
import { SenmlRecord, senmlRecords } from './senmlRecords';

/** RFC 8428 Table 6: the integer label of each SenML field. */
const LABEL_NAMES: ReadonlyMap<number, string> = new Map([
  [-1, 'bver'],
  [-2, 'bn'],
  [-3, 'bt'],
  [-4, 'bu'],
  [-5, 'bv'],
  [-6, 'bs'],
  [0, 'n'],
  [1, 'u'],
  [2, 'v'],
  [3, 'vs'],
  [4, 'vb'],
  [5, 's'],
  [6, 't'],
  [7, 'ut'],
  [8, 'vd'],
]);

/** The records of a SenML CBOR payload, with their times (see `SenmlRecord.time` for `nowMs`). */
export function senmlCborRecords(payload: Buffer, nowMs?: number): SenmlRecord[] {
  const pack = decodeCbor(payload, 'SenML CBOR');
  if (!Array.isArray(pack)) throw new Lwm2mPayloadError('SenML CBOR must be an array of records');
  return senmlRecords(pack.map(namedFields), 'SenML CBOR', nowMs);
}

export function decodeSenmlCbor(payload: Buffer): ResourceValue[] {
  return senmlCborRecords(payload).map(({ path, value }) => ({ path, value }));
}

/** A record map with its labels as the JSON field names; unknown integer labels are dropped. */
function namedFields(record: CborValue, index: number): Record<string, CborValue> {
  if (!(record instanceof Map)) throw new Lwm2mPayloadError(`SenML CBOR record ${index} is not a map`);
  const fields: [string, CborValue][] = [];
  for (const [label, value] of record) {
    const name = typeof label === 'number' ? LABEL_NAMES.get(label) : typeof label === 'string' ? label : undefined;
    if (name === undefined) continue;
    if (fields.some(([seen]) => seen === name)) {
      throw new Lwm2mPayloadError(`SenML CBOR record ${index} has the field ${name} twice`);
    }
    fields.push([name, value]);
  }
  return Object.fromEntries(fields);
}
