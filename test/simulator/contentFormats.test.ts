import { decodeWrite, encodeLinkFormat, encodeReadings } from '../../simulator/contentFormats';
import { findResource, parsePath, resourcesUnder } from '../../simulator/deviceResources';
import { AttributeStore } from '../../simulator/attributeStore';
import { CATALOG } from '../../shared/catalog';
import { decodePayload } from '../../connector/lwm2m/contentFormat';

const resource = (path: string) => {
  const definition = findResource(path);
  if (!definition) throw new Error(`no ${path}`);
  return definition;
};

describe('device resources', () => {
  test('every catalog resource of objects 1, 3 and 5 is simulated, with the catalog rules', () => {
    for (const entry of CATALOG.filter((e) => [1, 3, 5].includes(e.objectId))) {
      expect(findResource(entry.path)).toMatchObject({ name: entry.name, type: entry.type, catalogEntry: entry });
    }
    expect(resourcesUnder({ objectId: 3, instanceId: 0 }).map((r) => r.resourceId)).toEqual([
      0, 1, 2, 3, 4, 5, 9, 10, 11, 13, 14, 15, 16, 17, 18, 20, 21,
    ]);
    expect(parsePath(['3', '0', '9'])).toEqual({ objectId: 3, instanceId: 0, resourceId: 9 });
    expect(parsePath(['3', '01'])).toBeUndefined();
    expect(parsePath(['70000'])).toBeUndefined();
  });
});

describe('content formats', () => {
  const battery = { definition: resource('/3/0/9'), value: 87 };
  const memoryTotal = { definition: resource('/3/0/21'), value: 65_536 };
  const model = { definition: resource('/3/0/1'), value: 'SIM-1' };

  test('TLV: shortest signed integers, 8-bit ids, object instance wrapping', () => {
    const path = parsePath(['3', '0']);
    expect(encodeReadings(path!, [battery, memoryTotal, model], 11542)).toEqual(
      Buffer.from([
        0xc1,
        9,
        87, // resource 9, 1 byte
        0xc4,
        21,
        0x00,
        0x01,
        0x00,
        0x00, // resource 21, 4 bytes (65536 needs more than 2 signed bytes)
        0xc5,
        1,
        ...Buffer.from('SIM-1'), // resource 1, 5 bytes of text
      ]),
    );
    const object = encodeReadings(parsePath(['3'])!, [battery], 11542);
    expect(object).toEqual(Buffer.from([0x03, 0, 0xc1, 9, 87])); // instance 0 holding 3 bytes
  });

  test('SenML JSON: base name is the request path, names relative', () => {
    expect(JSON.parse(encodeReadings(parsePath(['3'])!, [battery, model], 110)!.toString())).toEqual([
      { bn: '/3/', n: '0/9', v: 87 },
      { n: '0/1', vs: 'SIM-1' },
    ]);
  });

  test('CBOR, SenML CBOR and LwM2M CBOR: what the connector decodes to the same values', () => {
    const firmware = { definition: resource('/5/0/0'), value: Buffer.from([1, 2, 255]) };
    const one = parsePath(['3', '0', '9'])!;
    const asConnectorReads = (format: number, path: string, readings: Parameters<typeof encodeReadings>[1]) =>
      decodePayload(format, encodeReadings(parsePath(path.split('/').slice(1))!, readings, format)!, path);
    expect(encodeReadings(one, [battery], 60)).toEqual(Buffer.from([0x18, 87]));
    expect(asConnectorReads(60, '/3/0/1', [model])).toEqual([
      { path: '/3/0/1', value: { type: 'string', string: 'SIM-1' } },
    ]);
    expect(asConnectorReads(60, '/5/0/0', [firmware])[0].value).toEqual({ type: 'bytes', bytes: firmware.value });
    expect(encodeReadings(parsePath(['3', '0'])!, [battery, model], 60)).toBeUndefined();
    for (const format of [112, 11544]) {
      expect(asConnectorReads(format, '/3/0', [battery, memoryTotal, model])).toEqual([
        { path: '/3/0/9', value: { type: 'number', number: 87 } },
        { path: '/3/0/21', value: { type: 'number', number: 65_536 } },
        { path: '/3/0/1', value: { type: 'string', string: 'SIM-1' } },
      ]);
      expect(asConnectorReads(format, '/3/0/9', [battery])).toEqual([
        { path: '/3/0/9', value: { type: 'number', number: 87 } },
      ]);
      expect(asConnectorReads(format, '/5/0/0', [firmware])[0].value).toEqual({ type: 'bytes', bytes: firmware.value });
    }
  });

  test('text/plain only for one non-opaque resource', () => {
    expect(encodeReadings(parsePath(['3', '0', '9'])!, [battery], 0)).toEqual(Buffer.from('87'));
    expect(encodeReadings(parsePath(['3', '0'])!, [battery, model], 0)).toBeUndefined();
  });

  test('Write decoding checks the type and the format', () => {
    expect(decodeWrite(resource('/3/0/13'), Buffer.from('1700000000'), 0)).toEqual({ ok: true, value: 1_700_000_000 });
    expect(decodeWrite(resource('/3/0/13'), Buffer.from('1.5'), 0)).toEqual({
      ok: false,
      reason: 'currentTime must be an integer; got "1.5"',
    });
    expect(decodeWrite(resource('/3/0/15'), Buffer.from([0xff, 0xfe]), 0)).toMatchObject({ ok: false });
    expect(decodeWrite(resource('/5/0/0'), Buffer.from([1, 2]), 42)).toEqual({ ok: true, value: Buffer.from([1, 2]) });
    expect(decodeWrite(resource('/5/0/0'), Buffer.from([1, 2]), 0)).toMatchObject({ ok: false });
  });

  test('link format', () => {
    expect(encodeLinkFormat([{ path: '/3/0/9', attributes: { pmin: 5 } }, { path: '/3/0/10' }]).toString()).toBe(
      '</3/0/9>;pmin=5,</3/0/10>',
    );
  });
});

describe('attribute store', () => {
  test('resource level wins over instance over object over defaults; overrides win over all', () => {
    const store = new AttributeStore();
    const battery = parsePath(['3', '0', '9'])!;
    const defaults = { pmin: 1, pmax: 300 };
    expect(store.effective(battery, defaults, {})).toEqual({ pminSeconds: 1, pmaxSeconds: 300 });
    expect(store.apply(parsePath(['3'])!, ['pmin=7'])).toEqual({ ok: true });
    expect(store.apply(parsePath(['3', '0'])!, ['pmax=70'])).toEqual({ ok: true });
    expect(store.effective(battery, defaults, {})).toEqual({ pminSeconds: 7, pmaxSeconds: 70 });
    expect(store.apply(battery, ['pmin=9', 'pmax=90'])).toEqual({ ok: true });
    expect(store.effective(battery, defaults, {})).toEqual({ pminSeconds: 9, pmaxSeconds: 90 });
    expect(store.effective(battery, defaults, { pmin: 2 })).toEqual({ pminSeconds: 2, pmaxSeconds: 90 });
    expect(store.apply(battery, ['pmax=5'])).toEqual({ ok: true });
    expect(store.effective(battery, defaults, {})).toEqual({ pminSeconds: 9 }); // pmax < pmin is ignored
    expect(store.apply(battery, ['pmin=1', 'st=2'])).toMatchObject({ ok: false });
    expect(store.writtenAt(battery)).toEqual({ pmin: 9, pmax: 5 }); // all or nothing
  });
});
