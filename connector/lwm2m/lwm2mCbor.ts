/**
 * LwM2M CBOR (content format 11544, LwM2M 1.2 Transport §7.4.7): nested CBOR maps keyed by path segments, each key an
 * id or an array of ids (a path prefix), e.g. `{3: {0: {0: "ACME", 9: 87}}}` or `{[3, 0, 9]: 87}`; the leaves are
 * resource values as in the CBOR format. Paths are absolute (from the client's root path).
 */
import { cborResourceValue, CborValue, decodeCbor } from './cbor';
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { ResourceValue } from './resourceValue';

const MAX_ID = 65_535;

export function decodeLwm2mCbor(payload: Buffer): ResourceValue[] {
  const root = decodeCbor(payload, 'LwM2M CBOR');
  if (!(root instanceof Map)) throw new Lwm2mPayloadError('LwM2M CBOR must be a map');
  const values: ResourceValue[] = [];
  collect(root, [], values);
  return values;
}

function collect(map: Map<CborValue, CborValue>, prefix: readonly number[], values: ResourceValue[]): void {
  for (const [key, item] of map) {
    const ids = [...prefix, ...segments(key, prefix)];
    if (ids.length > 4) throw new Lwm2mPayloadError(`LwM2M CBOR path /${ids.join('/')} is longer than /o/i/r/ri`);
    if (item instanceof Map) {
      collect(item, ids, values);
      continue;
    }
    const path = `/${ids.join('/')}`;
    if (ids.length < 3) throw new Lwm2mPayloadError(`LwM2M CBOR has a value at ${path}, which is not a resource`);
    values.push({ path, value: cborResourceValue(item, `LwM2M CBOR ${path}`) });
  }
}

function segments(key: CborValue, prefix: readonly number[]): number[] {
  const ids = Array.isArray(key) ? key : [key];
  if (
    ids.length === 0 ||
    !ids.every((id) => typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= MAX_ID)
  ) {
    throw new Lwm2mPayloadError(`LwM2M CBOR key under /${prefix.join('/')} is not an id or an array of ids`);
  }
  return ids as number[];
}
