/**
 * The LwM2M 1.0 JSON format (content format 11543, LwM2M 1.0 §6.4.4), which some 1.0 clients still send:
 * `{"bn":"/3/0/","e":[{"n":"9","v":87},{"n":"14","sv":"+02:00"}]}`, values in `v`, `sv`, `bv` or `ov`.
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { Lwm2mValue, ResourceValue } from './resourceValue';
import { checkedPath, isPlainObject, numberField, parseJson, stringField } from './payloadFields';

/** Decodes a payload answering a request on `requestPath`, the base when the document has no `bn`. */
export function decodeLwm2mJson(payload: Buffer, requestPath: string): ResourceValue[] {
  const document = parseJson(payload, 'LwM2M JSON');
  if (!isPlainObject(document)) throw new Lwm2mPayloadError('LwM2M JSON must be an object');
  if (!Array.isArray(document.e)) throw new Lwm2mPayloadError('LwM2M JSON needs an "e" array of entries');
  const base = document.bn === undefined ? undefined : stringField(document, 'bn', -1);
  return document.e.map((entry: unknown, index: number) => {
    if (!isPlainObject(entry)) throw new Lwm2mPayloadError(`LwM2M JSON entry ${index} is not an object`);
    const name = entry.n === undefined ? '' : stringField(entry, 'n', index);
    const full = base !== undefined ? base + name : name === '' ? requestPath : `${requestPath}/${name}`;
    return { path: checkedPath(full, `LwM2M JSON entry ${index}`), value: entryValue(entry, index) };
  });
}

function entryValue(entry: Record<string, unknown>, index: number): Lwm2mValue {
  const present = ['v', 'sv', 'bv', 'ov'].filter((field) => entry[field] !== undefined);
  if (present.length !== 1) {
    throw new Lwm2mPayloadError(`LwM2M JSON entry ${index} must have exactly one of v, sv, bv, ov`);
  }
  switch (present[0]) {
    case 'v':
      return { type: 'number', number: numberField(entry, 'v', index) };
    case 'bv':
      if (typeof entry.bv !== 'boolean') throw new Lwm2mPayloadError(`LwM2M JSON entry ${index}: bv must be a boolean`);
      return { type: 'boolean', boolean: entry.bv };
    default:
      return { type: 'string', string: stringField(entry, present[0], index) };
  }
}
