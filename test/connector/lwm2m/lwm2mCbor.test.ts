import { Encoder } from 'cbor-x';
import { findProperty } from '../../../shared/catalog';
import { decodePropertyValue } from '../../../connector/lwm2m/contentFormat';
import { decodeLwm2mCbor } from '../../../connector/lwm2m/lwm2mCbor';
import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });
const map = (entries: [unknown, unknown][]) => new Map(entries);

describe('LwM2M CBOR (11544)', () => {
  it('decodes nested maps written by hand: {3: {0: {0: "ACME", 9: 87}}}', () => {
    expect(decodeLwm2mCbor(hex('a1 03 a1 00 a2 00 64 41434d45 09 18 57'))).toEqual([
      { path: '/3/0/0', value: { type: 'string', string: 'ACME' } },
      { path: '/3/0/9', value: { type: 'number', number: 87 } },
    ]);
  });

  it('takes arrays of ids as path prefixes, resource instances and tag-1 times', () => {
    const payload = cbor.encode(
      map([
        [
          [3, 0],
          map([
            [
              6,
              map([
                [0, 1],
                [1, 5],
              ]),
            ],
            [13, 1_367_491_215],
          ]),
        ],
        [[1, 0, 1], 300],
      ]),
    );
    expect(decodeLwm2mCbor(payload)).toEqual([
      { path: '/3/0/6/0', value: { type: 'number', number: 1 } },
      { path: '/3/0/6/1', value: { type: 'number', number: 5 } },
      { path: '/3/0/13', value: { type: 'number', number: 1_367_491_215 } },
      { path: '/1/0/1', value: { type: 'number', number: 300 } },
    ]);
    expect(decodeLwm2mCbor(hex('a1 83 03 00 0d c1 1a 5182428f'))[0].value).toEqual({
      type: 'number',
      number: 1_367_491_215,
    });
  });

  it('types the value by the catalog for a read or notify of one resource', () => {
    const battery = findProperty('batteryLevel');
    if (!battery) throw new Error('batteryLevel');
    expect(decodePropertyValue(battery, 11544, cbor.encode(map([[[3, 0, 9], 42]])))).toBe(42);
  });

  it.each([
    ['not a map', cbor.encode([3, 0, 9])],
    ['a value at an instance', cbor.encode(map([[3, map([[0, 1]])]]))],
    ['a path longer than /o/i/r/ri', cbor.encode(map([[[3, 0, 6, 0, 1], 1]]))],
    ['a text key', cbor.encode(map([['3', map([[0, map([[9, 1]])]])]]))],
    ['an id above 65535', cbor.encode(map([[[3, 0, 70_000], 1]]))],
    ['an empty array key', cbor.encode(map([[[], 1]]))],
    ['a null value', cbor.encode(map([[[3, 0, 9], null]]))],
  ])('refuses a document with %s', (_what, payload) => {
    expect(() => decodeLwm2mCbor(payload)).toThrow(Lwm2mPayloadError);
  });
});
