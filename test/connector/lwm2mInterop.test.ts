/**
 * LwM2M interop over real UDP, against one connector listening on `::` (dual-stack): the Accept option and a
 * SenML-CBOR-preferring device, a Server object at `/1/1`, Send (`POST /dp`), an Update from a new port, and
 * devices registering over IPv6 and IPv4.
 */
import { Encoder } from 'cbor-x';
import { Code, OptionNumber, readUintOption, stringOption, uintOption } from '../../connector/coap/coapMessage';
import { startSimulatedFleet } from '../../simulator';
import { ConnectorHarness, TEST_API_KEY } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

const SENML_JSON = 110;
const SENML_CBOR = 112;
const TEXT = 0;

describe('connector LwM2M interop', () => {
  const harness = new ConnectorHarness();
  const devices: TestDevice[] = [];

  const startDevice = async (address = '127.0.0.1') => {
    const device = await TestDevice.start(
      address.includes(':') ? { host: '::1', port: harness.connector.coapPort } : harness.server,
      0,
      address,
    );
    devices.push(device);
    return device;
  };

  const api = (method: string, path: string, body?: unknown) =>
    fetch(`${harness.connector.apiUrl}${path}`, {
      method,
      headers: { 'x-connector-key': TEST_API_KEY, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  const send = (device: TestDevice, format: number, payload: Uint8Array) =>
    device.request(
      Code.POST,
      [stringOption(OptionNumber.URI_PATH, 'dp'), uintOption(OptionNumber.CONTENT_FORMAT, format)],
      Buffer.from(payload),
    );

  beforeAll(() =>
    harness.start(
      {
        coapAddress: '::',
        observation: {
          device: { pmin: 1, pmax: 3 },
          server: { pmin: 1, pmax: 3 },
          firmwareUpdate: { pmin: 1, pmax: 3 },
        },
      },
      'interop-test',
    ),
  );
  afterAll(async () => {
    for (const device of devices) await device.close();
    await harness.close();
  });

  it('asks a SenML-CBOR-preferring device for SenML CBOR: its twin fills and deep reads work', async () => {
    await harness.provision('cbor-001');
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix: 'cbor-',
      server: harness.server,
      lifetime: 60,
      changeIntervalMs: 200,
      prefersSenmlCbor: true,
    });
    try {
      await fleet.allRegistered();
      const twin = await harness.waitForTwin(
        'cbor-001',
        (t) =>
          Object.keys(t.deviceProperties).length > 0 &&
          Object.values(t.deviceProperties).every((p) => !p.supported || p.value !== undefined),
        6000,
      );
      expect(twin.deviceProperties.manufacturer.value).toEqual(expect.any(String));
      expect(twin.deviceProperties.registrationLifetime.value).toBe(60);
      expect(twin.staleProperties).toEqual([]);
      const read = await api('GET', '/devices/cbor-001/properties/batteryLevel');
      expect(read.status).toBe(200);
      expect(await read.json()).toMatchObject({ value: expect.any(Number) });
      expect(harness.logged('warn', /dropped unreadable/)).toEqual([]);
    } finally {
      await fleet.stop();
    }
  });

  it('sends the Accept option the registration announced on reads and observes', async () => {
    await harness.provision('accept-001');
    const device = await startDevice();
    device.setText('/3/0/9', 80);
    device.override = (request, path) =>
      path === '/3/0/9' && readUintOption(request, OptionNumber.ACCEPT) !== SENML_JSON
        ? { code: Code.NOT_ACCEPTABLE }
        : undefined;
    // The device serves text whatever it is asked; what matters here is what it was asked for.
    await device.register('accept-001', { links: '</>;rt="oma.lwm2m";ct="110 112",</3/0>' });
    await device.waitForObservations(['/3/0/9']);
    expect((await api('GET', '/devices/accept-001/properties/batteryLevel')).status).toBe(200);
    const gets = device.received.filter((r) => r.message.code === Code.GET);
    expect(gets.map((r) => readUintOption(r.message, OptionNumber.ACCEPT))).toEqual(gets.map(() => SENML_JSON));
  });

  it('reads and observes the Server object at /1/1 when that is the instance the device has', async () => {
    await harness.provision('srv1-001');
    const device = await startDevice();
    device.setText('/1/1/1', 120);
    device.setText('/1/1/2', 1);
    device.setText('/1/1/3', 3);
    await device.register('srv1-001', { links: '</1/1>,</3/0>' });
    await device.waitForObservations(['/1/1/1', '/1/1/2', '/1/1/3']);
    const twin = await harness.waitForTwin('srv1-001', (t) =>
      ['registrationLifetime', 'defaultMinPeriod', 'defaultMaxPeriod'].every(
        (n) => t.deviceProperties[n]?.value !== undefined,
      ),
    );
    expect(twin.deviceProperties).toMatchObject({
      registrationLifetime: { value: 120 },
      defaultMinPeriod: { value: 1 },
      defaultMaxPeriod: { value: 3 },
    });
    expect(device.received.some((r) => r.path.startsWith('/1/0'))).toBe(false);

    // Jobs reach /1/1 too: a deep write, then a deep read.
    expect((await api('PUT', '/devices/srv1-001/properties/defaultMaxPeriod', { value: 7 })).status).toBe(204);
    expect(device.resources.get('/1/1/3')?.payload.toString()).toBe('7');
    const read = await api('GET', '/devices/srv1-001/properties/defaultMaxPeriod');
    expect(await read.json()).toMatchObject({ value: 7 });
  });

  it('takes a Send: each catalogued record lands with source "send" and its SenML time', async () => {
    await harness.provision('send-001');
    const device = await startDevice();
    await device.register('send-001', { links: '</1/0>,</3/0>' });
    await harness.waitForTwin('send-001', (t) => t.connection.state === 'connected');
    const measuredAt = Math.floor(Date.now() / 1000) - 60;
    const pack = [
      { bn: '/3/0/', bt: measuredAt, n: '9', v: 42 },
      { n: '15', vs: 'Europe/Oslo', t: 1 },
      { n: '999', v: 1 }, // not in the catalog: ignored
      { bn: '/1/0/', n: '1', v: 90 },
    ];
    const response = await send(device, SENML_JSON, Buffer.from(JSON.stringify(pack)));
    expect(response.code).toBe(Code.CHANGED);
    const twin = await harness.waitForTwin('send-001', (t) => t.deviceProperties.timezone?.value === 'Europe/Oslo');
    expect(twin.deviceProperties.batteryLevel).toMatchObject({
      value: 42,
      source: 'send',
      lastUpdatedTime: new Date(measuredAt * 1000).toISOString(),
    });
    expect(twin.deviceProperties.timezone.lastUpdatedTime).toBe(new Date((measuredAt + 1) * 1000).toISOString());
    expect(twin.deviceProperties.registrationLifetime).toMatchObject({ value: 90, source: 'send' });
    expect(harness.logged('info', /outside the catalog/)).toHaveLength(1);

    // SenML CBOR; an older value never overwrites a newer one, a newer one does.
    const cbor = new Encoder({ mapsAsObjects: false, useRecords: false });
    const older = cbor.encode([
      new Map<number, unknown>([
        [-2, '/3/0/9'],
        [-3, measuredAt - 10],
        [2, 5],
      ]),
    ]);
    expect((await send(device, SENML_CBOR, older)).code).toBe(Code.CHANGED);
    const newer = cbor.encode([
      new Map<number, unknown>([
        [-2, '/3/0/9'],
        [-3, measuredAt + 10],
        [2, 43],
      ]),
    ]);
    expect((await send(device, SENML_CBOR, newer)).code).toBe(Code.CHANGED);
    const after = await harness.waitForTwin('send-001', (t) => t.deviceProperties.batteryLevel?.value === 43);
    expect(after.deviceProperties.batteryLevel.lastUpdatedTime).toBe(new Date((measuredAt + 10) * 1000).toISOString());

    // Out of the catalog's rules: dropped. Not SenML: 4.15. Not a pack: 4.00.
    await send(device, SENML_JSON, Buffer.from(JSON.stringify([{ n: '/3/0/9', v: 250 }])));
    expect((await send(device, TEXT, Buffer.from('42'))).code).toBe(Code.UNSUPPORTED_CONTENT_FORMAT);
    expect((await send(device, SENML_JSON, Buffer.from('{"n":1}'))).code).toBe(Code.BAD_REQUEST);
    await harness.connector.flush();
    expect((await harness.twin('send-001'))?.deviceProperties.batteryLevel.value).toBe(43);
  });

  it('refuses a Send from an address that holds no registration (4.00, as Leshan)', async () => {
    const stranger = await startDevice();
    const response = await send(stranger, SENML_JSON, Buffer.from(JSON.stringify([{ n: '/3/0/9', v: 1 }])));
    expect(response.code).toBe(Code.BAD_REQUEST);
  });

  it('follows an Update from a new port: observations are made anew there and the twin stays fresh', async () => {
    await harness.provision('move-001');
    const before = await startDevice();
    before.setText('/3/0/9', 70);
    const { location } = await before.register('move-001', { links: '</3/0/9>' });
    await before.waitForObservations(['/3/0/9']);
    await harness.waitForTwin('move-001', (t) => t.deviceProperties.batteryLevel?.value === 70);

    // NAT rebinding: the same device, seen from a new port; the old one goes quiet.
    const after = await startDevice();
    after.setText('/3/0/9', 71);
    before.unreachable = true;
    const movedAt = Date.now();
    expect((await after.update(location as string)).code).toBe(Code.CHANGED);
    await after.waitForObservations(['/3/0/9']);
    const twin = await harness.waitForTwin('move-001', (t) => t.deviceProperties.batteryLevel?.value === 71);
    // Fresh again within pmin (1 s) of the move.
    expect(Date.parse(twin.deviceProperties.batteryLevel.lastUpdatedTime as string)).toBeLessThan(movedAt + 1000);

    // Notifications from the new port reach the twin; the old observation's token is gone (RST).
    after.setText('/3/0/9', 72);
    after.notify('/3/0/9');
    await harness.waitForTwin(
      'move-001',
      (t) => t.deviceProperties.batteryLevel?.value === 72 && !t.deviceProperties.batteryLevel.stale,
    );
    const oldToken = before.observations.get('/3/0/9') as Buffer;
    after.observations.set('/old', oldToken);
    const resets = after.resetIds.length;
    after.notify('/old', { payload: Buffer.from('1') });
    await waitFor(() => after.resetIds.length > resets);
  });

  it('observes anew when a registered device notifies on a token the connector does not know', async () => {
    await harness.provision('lost-001');
    const device = await startDevice();
    device.setText('/3/0/9', 60);
    await device.register('lost-001', { links: '</3/0>' });
    await device.waitForObservations(['/3/0/9']);
    const observes = () =>
      device.received.filter((r) => r.path === '/3/0/9' && readUintOption(r.message, OptionNumber.OBSERVE) === 0)
        .length;
    const first = observes();
    device.observations.set('/lost', Buffer.from([1, 2, 3, 4]));
    device.notify('/lost', { payload: Buffer.from('1') });
    await waitFor(() => observes() > first);
    // A second unknown notification soon after does not start another round.
    device.notify('/lost', { payload: Buffer.from('1') });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(observes()).toBe(first + 1);
  });

  it('registers devices over IPv6 and over IPv4 on one socket', async () => {
    await harness.provision('v6-001');
    await harness.provision('v4-001');
    const v6 = await startDevice('::1');
    const v4 = await startDevice('127.0.0.1');
    for (const [device, name] of [
      [v6, 'v6-001'],
      [v4, 'v4-001'],
    ] as const) {
      device.setText('/3/0/9', 50);
      expect((await device.register(name, { links: '</3/0>' })).response.code).toBe(Code.CREATED);
      await device.waitForObservations(['/3/0/9']);
      await harness.waitForTwin(name, (t) => t.deviceProperties.batteryLevel?.value === 50);
      expect((await api('GET', `/devices/${name}/properties/batteryLevel`)).status).toBe(200);
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
