import { Encoder } from 'cbor-x';
import { decodeCbor, MAX_CBOR_DEPTH } from '../../../connector/lwm2m/cbor';
import { decodePayload } from '../../../connector/lwm2m/contentFormat';
import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });

describe('CBOR data items from devices', () => {
  it('decodes numbers, text, bytes, booleans, arrays, maps with integer keys and tag-1 times', () => {
    expect(decodeCbor(hex('1bffffffffffffffff'), 'CBOR')).toBe(18446744073709551615); // beyond 2^53: not exact
    expect(decodeCbor(hex('3903e7'), 'CBOR')).toBe(-1000);
    expect(decodeCbor(hex('f93e00'), 'CBOR')).toBe(1.5); // half-precision float
    expect(decodeCbor(hex('c11a5f000000'), 'CBOR')).toBe(0x5f000000); // tag 1: epoch seconds
    expect(decodeCbor(hex('8201a16178f5'), 'CBOR')).toEqual([1, new Map([['x', true]])]);
    expect(decodeCbor(hex('a220010242a1b2'), 'CBOR')).toEqual(
      new Map<number, unknown>([
        [-1, 1],
        [2, Buffer.from([0xa1, 0xb2])],
      ]),
    );
    expect(decodeCbor(hex('9f01a2000102029fffff'), 'CBOR')).toEqual([
      1,
      new Map([
        [0, 1],
        [2, 2],
      ]),
      [],
    ]);
  });

  it('copies byte strings out of the payload', () => {
    const payload = hex('42a1b2');
    const bytes = decodeCbor(payload, 'CBOR') as Buffer;
    payload.fill(0);
    expect(bytes).toEqual(Buffer.from([0xa1, 0xb2]));
  });

  const refused: [string, Buffer][] = [
    ['an empty payload', Buffer.alloc(0)],
    ['a truncated SenML pack', hex('81a321652f332f')],
    ['a truncated integer', hex('1a0000')],
    ['a byte string declaring 2^64-1 bytes', hex('5bffffffffffffffff00')],
    ['a text string declaring 4 GiB', hex('7affffffff61')],
    ['an array declaring 4 billion items', hex('9affffffff00')],
    ['an array declaring 100 million items', hex('9a05f5e10000')],
    ['a map declaring 2^64-1 pairs', hex('bbffffffffffffffff00')],
    ['arrays nested 100,000 deep', Buffer.alloc(100_000, 0x81)],
    ['indefinite arrays nested 100,000 deep', Buffer.alloc(100_000, 0x9f)],
    [`arrays nested ${MAX_CBOR_DEPTH + 1} deep`, Buffer.concat([Buffer.alloc(MAX_CBOR_DEPTH + 1, 0x81), hex('00')])],
    ['bytes after the data item', hex('0000')],
    ['a lone break', hex('ff')],
    ['a break in a definite array', hex('8201ff')],
    ['an indefinite map with a key and no value', hex('bf01ff')],
    ['an indefinite-length text string', hex('7f6161ff')],
    ['reserved additional information', hex('1c')],
    ['invalid UTF-8 in a text string', hex('62c328')],
    ['a two-byte simple value below 32', hex('f810')],
    ['tag 27 (a generic object: cbor-x would build an Error or RegExp)', hex('d81b826552656745787061')],
    ['tag 28 (a shared value)', hex('d81c01')],
    ['a cbor-x record definition (tag 57343)', hex('d9dfff8261616101')],
    ['a tag of a tag', hex('c1c101')],
    ['a tag with no item', hex('c1')],
  ];

  it.each(refused)('refuses %s with an Lwm2mPayloadError, quickly', (_what, payload) => {
    const started = process.hrtime.bigint();
    expect(() => decodeCbor(payload, 'CBOR')).toThrow(Lwm2mPayloadError);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(200);
  });

  it('survives random corruption of valid payloads: every outcome is a value or an Lwm2mPayloadError', () => {
    const samples = [
      cbor.encode([
        new Map<number, unknown>([
          [-2, '/3/0/'],
          [0, '9'],
          [2, 87],
          [6, -5],
        ]),
        new Map([
          [0, '1'],
          [3, 'x'],
        ]),
      ]),
      cbor.encode(
        new Map([
          [
            3,
            new Map([
              [
                0,
                new Map<number, unknown>([
                  [9, 87],
                  [1, 'SIM'],
                  [22, Buffer.from([1])],
                ]),
              ],
            ]),
          ],
        ]),
      ),
      hex('9f01a2000102029fffff'),
    ];
    let random = 12_345;
    const next = () => (random = (random * 1_103_515_245 + 12_345) & 0x7fffffff);
    for (let round = 0; round < 3_000; round++) {
      const payload = Buffer.from(samples[round % samples.length]);
      for (let flips = 1 + (next() % 3); flips > 0; flips--) payload[next() % payload.length] = next() & 0xff;
      const cut = next() % 4 === 0 ? payload.subarray(0, next() % payload.length) : payload;
      try {
        decodeCbor(cut, 'CBOR');
      } catch (error) {
        expect(error).toBeInstanceOf(Lwm2mPayloadError);
      }
    }
  });
});

describe('content format 60: one resource value in CBOR', () => {
  it('gives the typed value at the request path', () => {
    expect(decodePayload(60, hex('1857'), '/3/0/9')).toEqual([
      { path: '/3/0/9', value: { type: 'number', number: 87 } },
    ]);
    expect(decodePayload(60, hex('6341434d'), '/3/0/0')).toEqual([
      { path: '/3/0/0', value: { type: 'string', string: 'ACM' } },
    ]);
    expect(decodePayload(60, hex('420102'), '/5/0/0')[0].value).toEqual({ type: 'bytes', bytes: Buffer.from([1, 2]) });
    expect(decodePayload(60, hex('f5'), '/1/0/6')[0].value).toEqual({ type: 'boolean', boolean: true });
  });

  it.each([
    ['an array', '820102'],
    ['a map', 'a10102'],
    ['null', 'f6'],
  ])('refuses %s as a resource value', (_what, payload) => {
    expect(() => decodePayload(60, hex(payload), '/3/0/9')).toThrow(Lwm2mPayloadError);
  });
});
