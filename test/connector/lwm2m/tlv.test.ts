import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';
import {
  TlvKind,
  decodeTlv,
  encodeTlvEntry,
  flattenTlv,
  tlvInteger,
  tlvIntegerBytes,
} from '../../../connector/lwm2m/tlv';

/** LwM2M 1.0 §6.4.3.1 example: Read /3/0 (Device object instance 0) in TLV. */
const DEVICE_INSTANCE_EXAMPLE = Buffer.from(
  [
    'C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65',
    'C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74',
    'C8 02 09 33 34 35 30 30 30 31 32 33',
    'C3 03 31 2E 30',
    '86 06 41 00 01 41 01 05',
    '88 07 08 42 00 0E D8 42 01 13 88',
    '87 08 41 00 7D 42 01 03 84',
    'C1 09 64',
    'C1 0A 0F',
    '83 0B 41 00 00',
    'C4 0D 51 82 42 8F',
    'C6 0E 2B 30 32 3A 30 30',
    'C1 10 55',
  ]
    .join(' ')
    .replace(/ /g, ''),
  'hex',
);

describe('LwM2M TLV', () => {
  it('decodes the spec example of the Device object instance', () => {
    const values = new Map(flattenTlv(decodeTlv(DEVICE_INSTANCE_EXAMPLE), [3, 0]).map((v) => [v.path, v.bytes]));
    expect(values.get('/3/0/0')?.toString()).toBe('Open Mobile Alliance');
    expect(values.get('/3/0/1')?.toString()).toBe('Lightweight M2M Client');
    expect(values.get('/3/0/3')?.toString()).toBe('1.0');
    expect(tlvInteger(values.get('/3/0/9') as Buffer)).toBe(100);
    expect(tlvInteger(values.get('/3/0/10') as Buffer)).toBe(15);
    expect(tlvInteger(values.get('/3/0/13') as Buffer)).toBe(1367491215);
    expect(values.get('/3/0/14')?.toString()).toBe('+02:00');
    expect(tlvInteger(values.get('/3/0/7/1') as Buffer)).toBe(5000);
    expect(tlvInteger(values.get('/3/0/8/1') as Buffer)).toBe(900);
    expect(values.get('/3/0/16')?.toString()).toBe('U');
  });

  it('decodes the same instance wrapped in an object instance TLV, for a request on the object', () => {
    const wrapped = encodeTlvEntry(TlvKind.OBJECT_INSTANCE, 0, DEVICE_INSTANCE_EXAMPLE);
    expect(wrapped.subarray(0, 3)).toEqual(Buffer.from([0x08, 0x00, DEVICE_INSTANCE_EXAMPLE.length]));
    const values = flattenTlv(decodeTlv(wrapped), [3]);
    expect(values.find((v) => v.path === '/3/0/9')?.bytes).toEqual(Buffer.from([0x64]));
  });

  it('encodes integers in the fewest bytes and reads them back signed', () => {
    for (const value of [0, 1, -1, 127, 128, -129, 32767, 65535, -2147483648, 2 ** 40, -(2 ** 40)]) {
      expect(tlvInteger(tlvIntegerBytes(value))).toBe(value);
    }
    expect(tlvIntegerBytes(128).length).toBe(2);
    expect(() => tlvInteger(Buffer.from([1, 2, 3]))).toThrow('3 bytes');
  });

  it.each([
    ['a truncated header', 'C8'],
    ['a value past the end', 'C8 09 20 01'],
    ['a resource inside a resource instance list', '86 06 C1 00 01'],
    ['a 24-bit length past the end', 'D8 00 09 FF FF FF'],
  ])('refuses %s with an error naming it', (_what, hex) => {
    expect(() => decodeTlv(Buffer.from(hex.replace(/ /g, ''), 'hex'))).toThrow(Lwm2mPayloadError);
  });

  it('refuses resources with no instance to belong to', () => {
    expect(() => flattenTlv(decodeTlv(Buffer.from('C10964', 'hex')), [3])).toThrow('object instance');
  });
});
