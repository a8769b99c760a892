/**
 * LwM2M content formats: which the connector reads, and how a payload becomes typed property values.
 */
import { ContentFormat } from '../../shared/coapContentFormat';
import { CatalogEntry, PropertyValue, validateValue } from '../../shared/catalog';
import { cborResourceValue, decodeCbor } from './cbor';
import { decodeLwm2mCbor } from './lwm2mCbor';
import { decodeLwm2mJson } from './lwm2mJson';
import { Lwm2mPayloadError } from './lwm2mPayloadError';
import { Lwm2mValue, ResourceValue } from './resourceValue';
import { decodeSenmlCbor } from './senmlCbor';
import { decodeSenmlJson } from './senmlJson';
import { decodeTlv, flattenTlv, tlvInteger } from './tlv';

export { ContentFormat };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function strictUtf8(bytes: Buffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Lwm2mPayloadError(`${what} is not valid UTF-8`);
  }
}

/**
 * The resource values in a payload answering a request on `requestPath` (`/o/i/r`, relative to the client's root
 * path). `format` is the Content-Format option (absent: text/plain, the only format a single value can be sent in
 * without one). Throws `Lwm2mPayloadError` for an unknown format or a malformed payload.
 */
export function decodePayload(format: number | undefined, payload: Buffer, requestPath: string): ResourceValue[] {
  switch (format ?? ContentFormat.TEXT) {
    case ContentFormat.TEXT:
      return [{ path: requestPath, value: { type: 'text', text: strictUtf8(payload, 'text/plain payload') } }];
    case ContentFormat.OPAQUE:
      return [{ path: requestPath, value: { type: 'bytes', bytes: payload } }];
    case ContentFormat.TLV: {
      const ids = requestPath.split('/').slice(1).map(Number);
      return flattenTlv(decodeTlv(payload), ids).map(({ path, bytes }) => ({ path, value: { type: 'bytes', bytes } }));
    }
    case ContentFormat.SENML_JSON:
      return decodeSenmlJson(payload);
    case ContentFormat.LWM2M_JSON:
      return decodeLwm2mJson(payload, requestPath);
    case ContentFormat.CBOR:
      return [{ path: requestPath, value: cborResourceValue(decodeCbor(payload, 'CBOR'), 'CBOR') }];
    case ContentFormat.SENML_CBOR:
      return decodeSenmlCbor(payload);
    case ContentFormat.LWM2M_CBOR:
      return decodeLwm2mCbor(payload);
    default:
      throw new Lwm2mPayloadError(`unsupported content format ${format}`);
  }
}

/**
 * The value of `entry` in a payload, typed by the catalog and checked by its rules (`validateValue`, the rule writes
 * follow: range, string length, format). Throws `Lwm2mPayloadError` naming the property when the value is absent,
 * of the wrong type or outside the rules, so a notify or deep-read answer that breaks them is refused, never stored.
 */
export function decodePropertyValue(
  entry: CatalogEntry,
  format: number | undefined,
  payload: Buffer,
  requestPath: string = entry.path,
): PropertyValue {
  const found = decodePayload(format, payload, requestPath).find((v) => v.path === requestPath);
  if (!found) throw new Lwm2mPayloadError(`payload has no value for ${requestPath}`);
  const check = validateValue(entry, toPropertyValue(entry, found.value));
  if (!check.ok) throw new Lwm2mPayloadError(`${check.reason} (${entry.path})`);
  return check.value;
}

/** Types a raw value by the catalog entry: integers and times as safe integers, strings as text. */
export function toPropertyValue(entry: CatalogEntry, value: Lwm2mValue): PropertyValue {
  const expected = entry.type === 'string' ? 'a string' : 'an integer';
  const wrong = (got: string) => new Lwm2mPayloadError(`${entry.name} (${entry.path}) must be ${expected}; got ${got}`);
  if (entry.type === 'string') {
    switch (value.type) {
      case 'string':
        return value.string;
      case 'text':
        return value.text;
      case 'bytes':
        return strictUtf8(value.bytes, `${entry.name} (${entry.path})`);
      default:
        throw wrong(value.type);
    }
  }
  if (entry.type === 'none') throw wrong('a value for an operation');
  let number: number;
  switch (value.type) {
    case 'number':
      number = value.number;
      break;
    case 'text':
      if (!/^[+-]?\d{1,16}$/.test(value.text.trim())) throw wrong(`"${value.text.slice(0, 40)}"`);
      number = Number(value.text.trim());
      break;
    case 'bytes':
      number = tlvInteger(value.bytes);
      break;
    default:
      throw wrong(value.type);
  }
  if (!Number.isSafeInteger(number)) throw wrong(String(number));
  return number;
}

/** A property value as a text/plain payload (LwM2M writes of one resource). */
export function encodeTextValue(value: PropertyValue): Buffer {
  return Buffer.from(String(value), 'utf8');
}
