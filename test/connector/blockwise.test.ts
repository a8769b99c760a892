/**
 * Block-wise transfer (RFC 7959) end to end on real UDP: a device that registers with Block1, serves values and
 * notifications with 64-byte Block2 blocks and takes writes as Block1; hostile block options never crash the
 * connector.
 */
import { blockOption, readBlock } from '../../connector/coap/blockwise';
import {
  CoapMessage,
  Code,
  MessageType,
  OptionNumber,
  encodeMessage,
  readStringOptions,
  readUintOption,
  stringOption,
  uintOption,
} from '../../connector/coap/coapMessage';
import { ConnectorHarness, TEST_API_KEY, waitUntil } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

/** 64-byte blocks (RFC 7959 §2.2: size = 2^(SZX + 4)). */
const SZX = 2;
const SIZE = 64;
/** 150 two-byte characters: a 300-byte text/plain value within the catalog's 255-character strings. */
const VALUE = 'é'.repeat(150);

/** Serves every GET of a resource larger than a block as Block2 blocks; `failFrom` answers later blocks with 5.03. */
function serveInBlocks(device: TestDevice, state: { failLaterBlocks?: boolean } = {}): void {
  device.override = (request, path) => {
    if (request.code !== Code.GET) return undefined;
    const resource = device.resources.get(path);
    if (!resource || resource.payload.length <= SIZE) return undefined;
    const asked = readBlock(request, OptionNumber.BLOCK2);
    const num = typeof asked === 'object' ? asked.num : 0;
    if (num > 0 && state.failLaterBlocks) return { code: Code.SERVICE_UNAVAILABLE };
    const more = (num + 1) * SIZE < resource.payload.length;
    return {
      code: Code.CONTENT,
      payload: resource.payload.subarray(num * SIZE, (num + 1) * SIZE),
      options: [blockOption(OptionNumber.BLOCK2, { num, more, szx: SZX })],
    };
  };
}

describe('block-wise transfer (RFC 7959)', () => {
  const harness = new ConnectorHarness();
  const devices: TestDevice[] = [];
  const device = async () => {
    const created = await TestDevice.start(harness.server);
    devices.push(created);
    return created;
  };
  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${harness.connector.apiUrl}${path}`, {
      method,
      headers: { 'x-connector-key': TEST_API_KEY, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  beforeAll(() => harness.start({}, 'blockwise-test'));
  afterAll(async () => {
    for (const d of devices) await d.close();
    await harness.close();
  });

  it('registers a device whose Register comes in Block1 blocks (2.31 Continue per block, 2.01 at the last)', async () => {
    await harness.provision('block1-dev');
    const dev = await device();
    const links = Buffer.from(
      '</>;rt="oma.lwm2m",</1/0>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>,</3303/0>,</3303/1>,</3303/2>,</3303/3>,</3304/0>,</3304/1>,</3311/0>',
    );
    expect(links.length).toBeGreaterThan(2 * SIZE);
    const uri = [
      stringOption(OptionNumber.URI_PATH, 'rd'),
      uintOption(OptionNumber.CONTENT_FORMAT, 40),
      stringOption(OptionNumber.URI_QUERY, 'ep=block1-dev'),
      stringOption(OptionNumber.URI_QUERY, 'lt=300'),
      stringOption(OptionNumber.URI_QUERY, 'lwm2m=1.1'),
    ];
    const responses: CoapMessage[] = [];
    for (let num = 0; num * SIZE < links.length; num++) {
      const more = (num + 1) * SIZE < links.length;
      const block = [blockOption(OptionNumber.BLOCK1, { num, more, szx: SZX })];
      if (num === 0) block.push(uintOption(OptionNumber.SIZE1, links.length));
      responses.push(await dev.request(Code.POST, [...uri, ...block], links.subarray(num * SIZE, (num + 1) * SIZE)));
    }
    const last = responses.pop() as CoapMessage;
    expect(responses.map((r) => r.code)).toEqual(responses.map(() => Code.CONTINUE));
    expect(responses.map((r) => readBlock(r, OptionNumber.BLOCK1))).toEqual(
      responses.map((_, num) => ({ num, more: true, szx: SZX })),
    );
    expect(last.code).toBe(Code.CREATED);
    expect(readBlock(last, OptionNumber.BLOCK1)).toEqual({ num: responses.length, more: false, szx: SZX });
    expect(readStringOptions(last, OptionNumber.LOCATION_PATH)[0]).toBe('rd');
    const twin = await harness.waitForTwin('block1-dev', (t) => t.connection.state === 'connected');
    expect(twin.connection.registrationId).toBe(readStringOptions(last, OptionNumber.LOCATION_PATH)[1]);
  });

  it('stores a 300-byte value served in 64-byte Block2 blocks whole, and reads it whole', async () => {
    await harness.provision('block2-dev');
    const dev = await device();
    dev.setText('/3/0/0', VALUE);
    dev.setText('/3/0/9', 80);
    serveInBlocks(dev);
    expect(Buffer.byteLength(VALUE)).toBe(300);
    await dev.register('block2-dev', { links: '</3/0>' });
    const twin = await harness.waitForTwin('block2-dev', (t) => t.deviceProperties.manufacturer?.value !== undefined);
    expect(twin.deviceProperties.manufacturer?.value).toBe(VALUE);
    // The remaining blocks were fetched with GETs of the same URI, Block2 NUM 1-4, without Observe.
    const followUps = dev.received.filter((r) => r.path === '/3/0/0' && readBlock(r.message, OptionNumber.BLOCK2));
    expect(followUps.map((r) => (readBlock(r.message, OptionNumber.BLOCK2) as { num: number }).num)).toEqual([
      1, 2, 3, 4,
    ]);
    expect(followUps.every((r) => readUintOption(r.message, OptionNumber.OBSERVE) === undefined)).toBe(true);

    const read = await api('GET', '/devices/block2-dev/properties/manufacturer');
    expect(read.status).toBe(200);
    expect(((await read.json()) as { value: string }).value).toBe(VALUE);
  });

  it('reassembles a Block2 notification; drops and logs one whose later blocks fail, never storing part', async () => {
    await harness.provision('block2-notify');
    const dev = await device();
    const state = { failLaterBlocks: false };
    dev.setText('/3/0/0', VALUE);
    serveInBlocks(dev, state);
    await dev.register('block2-notify', { links: '</3/0>' });
    await dev.waitForObservations(['/3/0/0']);
    await harness.waitForTwin('block2-notify', (t) => t.deviceProperties.manufacturer?.value === VALUE);

    const notifyInBlocks = (value: string) => {
      dev.setText('/3/0/0', value);
      const payload = Buffer.from(value);
      dev.notify('/3/0/0', {
        payload: payload.subarray(0, SIZE),
        extraOptions: [blockOption(OptionNumber.BLOCK2, { num: 0, more: true, szx: SZX })],
      });
    };
    const changed = 'ü'.repeat(120) + 'end';
    notifyInBlocks(changed);
    await harness.waitForTwin('block2-notify', (t) => t.deviceProperties.manufacturer?.value === changed);

    state.failLaterBlocks = true;
    notifyInBlocks('ö'.repeat(140));
    await waitUntil(
      () => harness.logged('warn', /dropped a block-wise notification/).length > 0,
      5000,
      'the dropped notification logged',
    );
    expect(harness.logged('warn', /dropped a block-wise notification/)[0].fields?.reason).toMatch(/5\.03/);
    // Give a partial value every chance to be written: the twin keeps the last whole one.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await harness.twin('block2-notify'))?.deviceProperties.manufacturer?.value).toBe(changed);
  });

  it('sends a write larger than the device block size as Block1, after the device asked for 64-byte blocks', async () => {
    await harness.provision('block1-write');
    const dev = await device();
    dev.setText('/3/0/9', 70);
    await dev.register('block1-write', { links: '</3/0>,</5/0>' });
    await dev.waitForObservations(['/3/0/9']);
    const puts: CoapMessage[] = [];
    let body: Buffer[] = [];
    const written: string[] = [];
    dev.override = (request, path) => {
      if (request.code !== Code.PUT || path !== '/5/0/1') return undefined;
      puts.push(request);
      const block = readBlock(request, OptionNumber.BLOCK1);
      // This device takes at most 64 bytes a message: a larger plain request gets 4.13 with its block size.
      if (typeof block !== 'object') {
        return request.payload.length > SIZE
          ? {
              code: Code.REQUEST_ENTITY_TOO_LARGE,
              options: [blockOption(OptionNumber.BLOCK1, { num: 0, more: false, szx: SZX })],
            }
          : undefined;
      }
      if (block.num === 0) body = [];
      body.push(request.payload);
      const echo = [blockOption(OptionNumber.BLOCK1, block)];
      if (block.more) return { code: Code.CONTINUE, options: echo };
      written.push(Buffer.concat(body).toString());
      return { code: Code.CHANGED, options: echo };
    };
    const uri = `coap://firmware.example/${'é'.repeat(100)}`;
    expect(Buffer.byteLength(uri)).toBeGreaterThan(3 * SIZE);
    const response = await api('PUT', '/devices/block1-write/properties/firmwarePackageUri', { value: uri });
    expect(response.status).toBe(204);
    expect(written).toEqual([uri]);
    expect(puts[0].options.some((o) => o.number === OptionNumber.BLOCK1)).toBe(false);
    expect(puts.slice(1).every((p) => p.payload.length <= SIZE)).toBe(true);

    // The next write goes in 64-byte Block1 blocks from the start (Size1 announcing the whole).
    puts.length = 0;
    const again = `${uri}/v2`;
    expect((await api('PUT', '/devices/block1-write/properties/firmwarePackageUri', { value: again })).status).toBe(
      204,
    );
    expect(written).toEqual([uri, again]);
    expect(readBlock(puts[0], OptionNumber.BLOCK1)).toEqual({ num: 0, more: true, szx: SZX });
    expect(readUintOption(puts[0], OptionNumber.SIZE1)).toBe(Buffer.byteLength(again));
  });

  it('survives hostile block options (NUM overflow, SZX 7, sizes that do not add up) and keeps serving', async () => {
    await harness.provision('block-hostile');
    await harness.provision('block-after');
    const observed = await device();
    observed.setText('/3/0/9', 40);
    await observed.register('block-hostile', { links: '</3/0>' });
    await observed.waitForObservations(['/3/0/9']);
    const hostile = await device();
    const blockValues = [
      Buffer.from([0x0f]), // SZX 7
      Buffer.from([0xff, 0xff, 0xff, 0xf6]), // 4 bytes: NUM past 20 bits
      Buffer.from([0xff, 0xff, 0xfe]), // NUM 2^20 - 1
      Buffer.from([0x1e]), // NUM 1, M, SZX 6: continues nothing
      Buffer.from([0x0a]), // NUM 0, M, SZX 2 with a payload that is not 64 bytes
      Buffer.alloc(0), // NUM 0, no M, SZX 0 (16 bytes) with a longer payload
    ];
    const codes = new Set<number>();
    let messageId = 1;
    for (let i = 0; i < 60; i++) {
      const value = blockValues[i % blockValues.length];
      const number = i % 2 === 0 ? OptionNumber.BLOCK1 : OptionNumber.BLOCK2;
      const response = await hostile.request(
        Code.POST,
        [
          stringOption(OptionNumber.URI_PATH, 'rd'),
          stringOption(OptionNumber.URI_QUERY, 'ep=block-ghost'),
          { number, value },
          ...(i % 3 === 0 ? [{ number: OptionNumber.SIZE1, value: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]) }] : []),
        ],
        Buffer.alloc(10 + (i % 40), 0x3c),
      );
      codes.add(response.code);
      // And notifications with the same options on the live observation.
      observed.notify('/3/0/9', {
        payload: Buffer.from('41'),
        sequence: 1000 + i,
        extraOptions: [{ number: OptionNumber.BLOCK2, value }],
      });
      observed.sendRaw(
        encodeMessage({
          type: MessageType.NON,
          code: Code.CONTENT,
          messageId: messageId++,
          token: observed.observations.get('/3/0/9') as Buffer,
          options: [uintOption(OptionNumber.OBSERVE, 5000 + i), { number: OptionNumber.SIZE2, value }],
          payload: Buffer.from('42'),
        }),
      );
    }
    expect([...codes].every((code) => code >> 5 === 4 || code >> 5 === 5)).toBe(true);
    expect(codes.has(Code.BAD_REQUEST)).toBe(true);
    expect(codes.has(Code.REQUEST_ENTITY_TOO_LARGE)).toBe(true);
    expect(harness.logged('error', /.*/)).toEqual([]);
    expect(harness.logs.length).toBeLessThan(500);

    observed.notify('/3/0/9', { payload: Buffer.from('77'), sequence: 100_000 });
    await harness.waitForTwin('block-hostile', (t) => t.deviceProperties.batteryLevel?.value === 77);
    const after = await device();
    after.setText('/3/0/9', 73);
    expect((await after.register('block-after', { links: '</3/0>' })).response.code).toBe(Code.CREATED);
    await harness.waitForTwin('block-after', (t) => t.deviceProperties.batteryLevel?.value === 73);
  });
});
