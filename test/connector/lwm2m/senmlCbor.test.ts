import { Encoder } from 'cbor-x';
import { findProperty } from '../../../shared/catalog';
import { decodePropertyValue } from '../../../connector/lwm2m/contentFormat';
import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';
import { decodeSenmlCbor, senmlCborRecords } from '../../../connector/lwm2m/senmlCbor';
import { senmlJsonRecords } from '../../../connector/lwm2m/senmlJson';
import { senmlRecords } from '../../../connector/lwm2m/senmlRecords';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const cbor = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false });
/** A SenML CBOR pack from records keyed by RFC 8428 integer labels. */
const pack = (...records: [number | string, unknown][][]) => cbor.encode(records.map((fields) => new Map(fields)));
const BN = -2;
const BT = -3;
const BV = -5;
const N = 0;
const V = 2;
const VS = 3;
const VB = 4;
const T = 6;
const VD = 8;

describe('SenML CBOR (112)', () => {
  it('decodes a pack written by hand: [{bn: "/3/0/", n: "9", v: 87}, {n: "0", vs: "ACME"}]', () => {
    const payload = hex('82 a3 21 65 2f332f302f 00 61 39 02 18 57 a2 00 61 30 03 64 41434d45');
    expect(decodeSenmlCbor(payload)).toEqual([
      { path: '/3/0/9', value: { type: 'number', number: 87 } },
      { path: '/3/0/0', value: { type: 'string', string: 'ACME' } },
    ]);
  });

  it('gives the same records as the same pack in SenML JSON, base value, data as bytes and objlnk included', () => {
    const json = Buffer.from(
      JSON.stringify([
        { bn: '/3/0/', bt: 1_700_000_000, bv: 10, n: '9', v: 77, t: -5 },
        { n: '6/0', v: 1 },
        { n: '/1/0/6'.slice(5), vb: false },
        { bn: '/5/0/', n: '0', vd: Buffer.from([1, 2, 255]).toString('base64url') },
        { bn: '/4/0/', n: '0', vlo: '3:0' },
      ]),
    );
    const binary = pack(
      [
        [BN, '/3/0/'],
        [BT, 1_700_000_000],
        [BV, 10],
        [N, '9'],
        [V, 77],
        [T, -5],
      ],
      [
        [N, '6/0'],
        [V, 1],
      ],
      [
        [N, '6'],
        [VB, false],
      ],
      [
        [BN, '/5/0/'],
        [N, '0'],
        [VD, Buffer.from([1, 2, 255])],
      ],
      [
        [BN, '/4/0/'],
        [N, '0'],
        ['vlo', '3:0'],
      ],
    );
    const records = senmlCborRecords(binary);
    expect(records).toEqual(senmlJsonRecords(json));
    expect(records[0]).toEqual({ path: '/3/0/9', value: { type: 'number', number: 87 }, time: 1_699_999_995_000 });
    expect(records[3].value).toEqual({ type: 'bytes', bytes: Buffer.from([1, 2, 255]) });
    expect(records[4].value).toEqual({ type: 'string', string: '3:0' });
  });

  it('types the value by the catalog for a read or notify of one resource', () => {
    const battery = findProperty('batteryLevel');
    if (!battery) throw new Error('batteryLevel');
    expect(
      decodePropertyValue(
        battery,
        112,
        pack([
          [BN, '/3/0/9'],
          [V, 87],
        ]),
      ),
    ).toBe(87);
    expect(() =>
      decodePropertyValue(
        battery,
        112,
        pack([
          [BN, '/3/0/9'],
          [VS, '87'],
        ]),
      ),
    ).toThrow('must be an integer');
  });

  it.each([
    ['not an array', cbor.encode(new Map([[BN, '/3/0/']]))],
    ['a record that is not a map', cbor.encode([1])],
    [
      'a field twice (label and text)',
      pack([
        [N, '/3/0/9'],
        ['n', '/3/0/9'],
        [V, 1],
      ]),
    ],
    [
      'several values',
      pack([
        [N, '/3/0/9'],
        [V, 1],
        [VS, '1'],
      ]),
    ],
    [
      'vd as text instead of bytes',
      pack([
        [N, '/3/0/9'],
        [VD, 'AQI'],
      ]),
    ],
    [
      'a name that is not a path',
      pack([
        [N, 'battery'],
        [V, 1],
      ]),
    ],
    [
      'an unknown must-understand field',
      pack([
        [N, '/3/0/9'],
        [V, 1],
        ['exp_', 1],
      ]),
    ],
    ['invalid CBOR', hex('81a2')],
  ])('refuses a pack with %s', (_what, payload) => {
    expect(() => decodeSenmlCbor(payload)).toThrow(Lwm2mPayloadError);
  });
});

describe('SenML records with times (for Send)', () => {
  const NOW_MS = 1_750_000_000_000;

  it('resolves base time + time as absolute epoch ms, and relative times (below 2^28 s) against now', () => {
    const records = senmlRecords(
      [
        { bn: '/3/0/', n: '9', v: 80 }, // no time: the caller uses the arrival time
        { bt: 1_700_000_000.5, n: '9', v: 81 }, // base time alone
        { n: '9', v: 82, t: 10 }, // base time + time
        { bt: -60, n: '9', v: 83 }, // a minute ago
        { bt: 0, n: '9', v: 84, t: 0 }, // now
      ],
      'SenML JSON',
      NOW_MS,
    );
    expect(records.map((r) => r.time)).toEqual([
      undefined,
      1_700_000_000_500,
      1_700_000_010_500,
      NOW_MS - 60_000,
      NOW_MS,
    ]);
    expect(records[0]).not.toHaveProperty('time');
  });

  it('leaves relative times out when no current time is given', () => {
    expect(senmlRecords([{ n: '/3/0/9', v: 1, t: -5 }], 'SenML JSON')).toEqual([
      { path: '/3/0/9', value: { type: 'number', number: 1 } },
    ]);
  });

  it('refuses a non-numeric time', () => {
    expect(() => senmlRecords([{ n: '/3/0/9', v: 1, t: '1' }], 'SenML JSON')).toThrow(Lwm2mPayloadError);
  });
});
