import { once } from 'events';
import { generate } from 'coap-packet';
import { decodePayload } from '../../connector/lwm2m/contentFormat';
import { uintOption } from './lwm2mServerStandIn';
import { settle, startTestFleet, TestFleet } from './testFleet';

const TEXT = 0;
const LINK_FORMAT = 40;
const OPAQUE = 42;
const CBOR = 60;
const SENML_JSON = 110;
const SENML_CBOR = 112;
const TLV = 11542;
const LWM2M_JSON = 11543;

describe('simulated device: device management (read, write, execute, write-attributes, discover)', () => {
  let harness: TestFleet;
  beforeEach(async () => {
    harness = await startTestFleet({ firmwareStepMs: 2_000 });
    await harness.device.registered();
  });
  afterEach(() => harness.stop());

  const request = (...args: Parameters<TestFleet['server']['request']> extends [number, ...infer R] ? R : never) =>
    harness.server.request(harness.device.port, ...args);

  test('Read of a resource answers text/plain by default, and the formats it can produce when asked', async () => {
    const { device } = harness;
    device.setValue('/3/0/9', 78);

    const text = await request({ method: 'GET', path: '/3/0/9' });
    expect(text).toMatchObject({ code: '2.05', contentFormat: TEXT, payload: '78' });

    const senml = await request({ method: 'GET', path: '/3/0/9', accept: SENML_JSON });
    expect(senml.contentFormat).toBe(SENML_JSON);
    expect(JSON.parse(senml.payload)).toEqual([{ bn: '/3/0/9', v: 78 }]);

    const tlv = await request({ method: 'GET', path: '/3/0/9', accept: TLV });
    expect(tlv.contentFormat).toBe(TLV);
    expect(tlv.raw).toEqual(Buffer.from([0xc1, 0x09, 78])); // resource, 8-bit id 9, length 1, value 78

    for (const accept of [OPAQUE, LWM2M_JSON]) {
      expect((await request({ method: 'GET', path: '/3/0/9', accept })).code).toBe('4.06');
    }
    expect((await request({ method: 'GET', path: '/3/0/0' })).payload).toBe('lwm2m-twins');
    expect((await request({ method: 'GET', path: '/3/0/2' })).payload).toBe('SN-sim-001');
  });

  test('Read of an object instance answers SenML JSON with every readable resource', async () => {
    const response = await request({ method: 'GET', path: '/3/0' });
    expect(response).toMatchObject({ code: '2.05', contentFormat: SENML_JSON });
    const records = JSON.parse(response.payload) as { bn?: string; n: string; v?: number; vs?: string }[];
    expect(records[0].bn).toBe('/3/0/');
    expect(records.map((r) => r.n)).toEqual(
      expect.arrayContaining(['0', '1', '2', '3', '9', '10', '13', '14', '15', '17', '18', '20', '21']),
    );
    expect(records.map((r) => r.n)).not.toContain('4'); // reboot is executable, not readable
    expect(records.find((r) => r.n === '9')?.v).toBe(harness.device.getValue('/3/0/9'));
    expect((await request({ method: 'GET', path: '/5/0', accept: TLV })).code).toBe('2.05');
    expect((await request({ method: 'GET', path: '/3/0', accept: TEXT })).code).toBe('4.06');
  });

  test('Read errors: unknown path 4.04, executable or write-only resource 4.05', async () => {
    expect((await request({ method: 'GET', path: '/3/0/99' })).code).toBe('4.04');
    expect((await request({ method: 'GET', path: '/4/0' })).code).toBe('4.04');
    expect((await request({ method: 'GET', path: '/3/zero/9' })).code).toBe('4.04');
    const reboot = await request({ method: 'GET', path: '/3/0/4' });
    expect(reboot).toMatchObject({ code: '4.05', payload: '/3/0/4 is not readable' });
    expect((await request({ method: 'GET', path: '/5/0/1' })).code).toBe('4.05');
  });

  test('Write (PUT or POST, text/plain) validates the type and range; read-only gives 4.05', async () => {
    const { device } = harness;
    const put = await request({ method: 'PUT', path: '/3/0/15', contentFormat: TEXT, payload: 'Europe/Paris' });
    expect(put.code).toBe('2.04');
    expect(device.getValue('/3/0/15')).toBe('Europe/Paris');
    expect((await request({ method: 'POST', path: '/3/0/14', contentFormat: TEXT, payload: '+02:00' })).code).toBe(
      '2.04',
    );
    expect(device.getValue('/3/0/14')).toBe('+02:00');

    const badZone = await request({ method: 'PUT', path: '/3/0/15', contentFormat: TEXT, payload: 'Mars/Olympus' });
    expect(badZone).toMatchObject({ code: '4.00', payload: expect.stringContaining('timezone') });
    const badTime = await request({ method: 'PUT', path: '/3/0/13', contentFormat: TEXT, payload: 'noon' });
    expect(badTime).toMatchObject({ code: '4.00', payload: 'currentTime must be an integer; got "noon"' });
    const readOnly = await request({ method: 'PUT', path: '/3/0/9', contentFormat: TEXT, payload: '50' });
    expect(readOnly).toMatchObject({ code: '4.05', payload: '/3/0/9 is not writable' });
    const tlv = await request({ method: 'PUT', path: '/3/0/14', contentFormat: TLV, payload: Buffer.from([0xc0, 14]) });
    expect(tlv.code).toBe('4.15');
    expect((await request({ method: 'PUT', path: '/3/0', contentFormat: TEXT, payload: 'x' })).code).toBe('4.05');
    expect(device.getValue('/3/0/15')).toBe('Europe/Paris');
  });

  test('Write of currentTime sets the device clock, which keeps running', async () => {
    const { device, clock } = harness;
    expect((await request({ method: 'PUT', path: '/3/0/13', contentFormat: TEXT, payload: '1700000000' })).code).toBe(
      '2.04',
    );
    expect(device.getValue('/3/0/13')).toBe(1_700_000_000);
    clock.advance(5_000);
    expect((await request({ method: 'GET', path: '/3/0/13' })).payload).toBe('1700000005');
  });

  test('Execute factoryReset restores written settings; execute on a non-executable resource is 4.05', async () => {
    const { device } = harness;
    await request({ method: 'PUT', path: '/3/0/15', contentFormat: TEXT, payload: 'Asia/Tokyo' });
    expect((await request({ method: 'POST', path: '/3/0/5' })).code).toBe('2.04');
    expect(device.getValue('/3/0/15')).toBe('UTC');
    expect((await request({ method: 'POST', path: '/3/0/9' })).code).toBe('4.05');
  });

  test('firmware update: writing a URI downloads, executing /5/0/2 installs, the state machine moves', async () => {
    const { device, clock } = harness;
    const state = () => [device.getValue('/5/0/3'), device.getValue('/5/0/5')];
    expect((await request({ method: 'POST', path: '/5/0/2' })).code).toBe('4.05'); // nothing downloaded

    const uri = 'coap://firmware.example/packages/fw-2.1.0.bin';
    expect((await request({ method: 'PUT', path: '/5/0/1', contentFormat: TEXT, payload: uri })).code).toBe('2.04');
    expect(state()).toEqual([1, 0]); // downloading
    clock.advance(2_000);
    expect(state()).toEqual([2, 0]); // downloaded
    expect((await request({ method: 'GET', path: '/5/0/6' })).payload).toBe('fw');
    expect((await request({ method: 'GET', path: '/5/0/7' })).payload).toBe('2.1.0');

    expect((await request({ method: 'POST', path: '/5/0/2' })).code).toBe('2.04');
    expect(state()).toEqual([3, 0]); // updating
    clock.advance(2_000);
    expect(state()).toEqual([0, 1]); // idle, success
    expect(device.getValue('/3/0/3')).toBe('2.1.0');

    await request({ method: 'PUT', path: '/5/0/1', contentFormat: TEXT, payload: 'ftp://example/fw.bin' });
    expect(state()).toEqual([0, 9]); // unsupported protocol
    await request({ method: 'PUT', path: '/5/0/0', contentFormat: OPAQUE, payload: Buffer.from([1, 2, 3]) });
    expect(state()).toEqual([2, 0]); // a pushed package is downloaded at once
  });

  test('Write-Attributes stores pmin/pmax per path (shown by Discover); bad attributes are 4.00', async () => {
    expect((await request({ method: 'PUT', path: '/3/0/9', query: ['pmin=5', 'pmax=20'] })).code).toBe('2.04');
    expect((await request({ method: 'PUT', path: '/3/0', query: ['pmax=600'] })).code).toBe('2.04');
    const discover = await request({ method: 'GET', path: '/3/0', accept: LINK_FORMAT });
    expect(discover.contentFormat).toBe(LINK_FORMAT);
    expect(discover.payload).toMatch(/^<\/3\/0>;pmax=600,<\/3\/0\/0>,/);
    expect(discover.payload).toContain('</3/0/9>;pmin=5;pmax=20,');

    expect((await request({ method: 'PUT', path: '/3/0/9', query: ['gt=50'] })).payload).toMatch(
      /attribute "gt" is not supported/,
    );
    expect((await request({ method: 'PUT', path: '/3/0/9', query: ['pmin=soon'] })).code).toBe('4.00');
    expect((await request({ method: 'PUT', path: '/3/0/99', query: ['pmin=1'] })).code).toBe('4.04');
    expect((await request({ method: 'PUT', path: '/3/0/9', query: ['pmin'] })).code).toBe('2.04');
    const after = await request({ method: 'GET', path: '/3/0/9', accept: LINK_FORMAT });
    expect(after.payload).toBe('</3/0/9>;pmax=20');
  });

  test('setValue and getValue refuse unknown paths and bad values, naming them', () => {
    const { device } = harness;
    expect(() => device.setValue('/3/0/9', 101)).toThrow('sim-001: batteryLevel must be an integer from 0 to 100');
    expect(() => device.setValue('/9/0/9', 1)).toThrow('sim-001: no resource with a value at /9/0/9');
    expect(() => device.getValue('/3/0/4')).toThrow(/no resource with a value at \/3\/0\/4/);
    device.setValue('/3/0/17', 'gateway');
    expect(device.getValue('/3/0/17')).toBe('gateway');
  });
});

describe('simulated device that prefers SenML CBOR', () => {
  let harness: TestFleet;
  beforeEach(async () => {
    harness = await startTestFleet({ prefersSenmlCbor: true });
    await harness.device.registered();
  });
  afterEach(() => harness.stop());

  test('announces ct=112, answers reads and observes in it unless Accept says otherwise', async () => {
    const { server, device, clock } = harness;
    expect(server.registrations[0].body).toMatch(/^<\/>;rt="oma.lwm2m";ct=112,/);
    device.setValue('/3/0/9', 78);

    const read = await server.request(device.port, { method: 'GET', path: '/3/0/9' });
    expect(read.contentFormat).toBe(SENML_CBOR);
    expect(decodePayload(read.contentFormat, read.raw, '/3/0/9')).toEqual([
      { path: '/3/0/9', value: { type: 'number', number: 78 } },
    ]);
    const instance = await server.request(device.port, { method: 'GET', path: '/3/0' });
    expect(instance.contentFormat).toBe(SENML_CBOR);
    expect(decodePayload(SENML_CBOR, instance.raw, '/3/0')).toContainEqual({
      path: '/3/0/0',
      value: { type: 'string', string: 'lwm2m-twins' },
    });
    expect(await server.request(device.port, { method: 'GET', path: '/3/0/9', accept: TEXT })).toMatchObject({
      contentFormat: TEXT,
      payload: '78',
    });
    expect((await server.request(device.port, { method: 'GET', path: '/3/0/9', accept: CBOR })).raw).toEqual(
      Buffer.from([0x18, 78]),
    );

    const query = ['pmin=1', 'pmax=60'];
    expect((await server.request(device.port, { method: 'PUT', path: '/3/0/9', query })).code).toBe('2.04');
    const observe = await server.request(device.port, { method: 'GET', path: '/3/0/9', observe: 0 });
    expect(observe.contentFormat).toBe(SENML_CBOR);
    device.setValue('/3/0/9', 77);
    clock.advance(1_000);
    await server.waitFor(() => server.notifications.length === 1, 'the notification');
    const notification = server.notifications[0].packet;
    expect(uintOption(notification, 'Content-Format')).toBe(SENML_CBOR);
    expect(decodePayload(SENML_CBOR, notification.payload, '/3/0/9')[0].value).toEqual({ type: 'number', number: 77 });
  });
});

describe('simulated device: observe with pmin/pmax', () => {
  let harness: TestFleet;
  afterEach(() => harness.stop());

  async function observeBattery(query: string[] = ['pmin=10', 'pmax=60']) {
    const { server, device } = harness;
    expect((await server.request(device.port, { method: 'PUT', path: '/3/0/9', query })).code).toBe('2.04');
    device.setValue('/3/0/9', 80);
    const token = Buffer.from('0b5e7e01', 'hex');
    const first = await server.request(device.port, { method: 'GET', path: '/3/0/9', observe: 0, token });
    expect(first).toMatchObject({ code: '2.05', payload: '80', contentFormat: TEXT });
    expect(first.observe).toEqual(expect.any(Number));
    return { first, token };
  }

  test('a change notifies no sooner than pmin after the previous notification, with the latest value', async () => {
    harness = await startTestFleet();
    const { server, device, clock } = harness;
    await device.registered();
    const { first } = await observeBattery();

    device.setValue('/3/0/9', 79);
    device.setValue('/3/0/9', 78);
    clock.advance(9_999);
    await settle();
    expect(server.notifications).toHaveLength(0);

    clock.advance(1);
    await server.waitFor(() => server.notifications.length === 1, 'the notification at pmin');
    expect(server.notifications[0]).toMatchObject({ payload: '78', token: '0b5e7e01' });
    expect(server.notifications[0].observe).toBeGreaterThan(first.observe as number);

    // Right after a notification, a change waits for pmin again.
    device.setValue('/3/0/9', 77);
    clock.advance(5_000);
    await settle();
    expect(server.notifications).toHaveLength(1);
    clock.advance(5_000);
    await server.waitFor(() => server.notifications.length === 2, 'the second notification');
    expect(server.notifications[1].payload).toBe('77');
    expect(server.notifications[1].observe).toBeGreaterThan(server.notifications[0].observe);
  });

  test('without a change, a notification comes every pmax', async () => {
    harness = await startTestFleet();
    const { server, device, clock } = harness;
    await device.registered();
    await observeBattery();

    clock.advance(59_999);
    await settle();
    expect(server.notifications).toHaveLength(0);
    clock.advance(1);
    await server.waitFor(() => server.notifications.length === 1, 'the pmax notification');
    expect(server.notifications[0].payload).toBe('80');
    clock.advance(60_000);
    await server.waitFor(() => server.notifications.length === 2, 'the next pmax notification');
    expect(device.observationList()).toEqual([
      { path: '/3/0/9', token: '0b5e7e01', pminSeconds: 10, pmaxSeconds: 60, contentFormat: TEXT, notifications: 2 },
    ]);
  });

  test('with pmin 0 every change notifies at once; every Nth notification is confirmable and gets ACKed', async () => {
    harness = await startTestFleet({ confirmableEvery: 3 });
    const { server, device } = harness;
    await device.registered();
    await observeBattery(['pmin=0', 'pmax=3600']);
    for (const [index, level] of [70, 71, 72, 73, 74, 75].entries()) {
      device.setValue('/3/0/9', level);
      await server.waitFor(() => server.notifications.length === index + 1, `notification ${index + 1}`);
      // The ACK of a CON reaches the device before the next change (else the next one takes the CON over).
      await server.waitFor(
        () => device.counters.notificationsAcknowledged === device.counters.confirmableNotificationsSent,
        'the ACK',
      );
    }
    expect(server.notifications.map((n) => n.payload)).toEqual(['70', '71', '72', '73', '74', '75']);
    expect(server.notifications.map((n) => (n.packet.confirmable ? 'CON' : 'NON'))).toEqual([
      'NON',
      'NON',
      'CON',
      'NON',
      'NON',
      'CON',
    ]);
    const sequence = server.notifications.map((n) => n.observe);
    expect([...sequence].sort((a, b) => a - b)).toEqual(sequence);
    await settle();
    expect(device.counters).toMatchObject({
      notificationsSent: 6,
      confirmableNotificationsSent: 2,
      retransmissions: 0,
    });
  });

  test('the fleet pmin/pmax options override what the server writes', async () => {
    harness = await startTestFleet({ pmin: 2, pmax: 5 });
    const { server, device, clock } = harness;
    await device.registered();
    await observeBattery(['pmin=100', 'pmax=1000']);
    clock.advance(5_000);
    await server.waitFor(() => server.notifications.length === 1, 'a notification at the overriding pmax');
    device.setValue('/3/0/9', 50);
    clock.advance(2_000);
    await server.waitFor(() => server.notifications.length === 2, 'a notification at the overriding pmin');
    expect(server.notifications[1].payload).toBe('50');
  });

  test('an observation of an instance notifies once per step, however many of its resources changed', async () => {
    harness = await startTestFleet({ changeIntervalMs: 1_000 });
    const { server, device, clock } = harness;
    await device.registered();
    const first = await server.request(device.port, { method: 'GET', path: '/3/0', observe: 0 });
    expect(first.contentFormat).toBe(SENML_JSON);
    clock.advance(1_000); // battery, memory and clock change in this step
    await server.waitFor(() => server.notifications.length === 1, 'one instance notification');
    await settle();
    expect(server.notifications).toHaveLength(1);
    const records = JSON.parse(server.notifications[0].payload) as { n: string; v?: number }[];
    expect(records.find((r) => r.n === '9')?.v).toBe(device.getValue('/3/0/9'));
  });

  test('Observe 1 cancels; so does a RST to a notification', async () => {
    harness = await startTestFleet();
    const { server, device, clock } = harness;
    await device.registered();
    const { token } = await observeBattery(['pmin=0', 'pmax=3600']);
    const cancel = await server.request(device.port, { method: 'GET', path: '/3/0/9', observe: 1, token });
    expect(cancel).toMatchObject({ code: '2.05', observe: undefined });
    expect(device.observationList()).toEqual([]);
    device.setValue('/3/0/9', 12);
    clock.advance(1_000);
    await settle();
    expect(server.notifications).toHaveLength(0);

    await observeBattery(['pmin=0', 'pmax=3600']);
    server.acceptNotifications = false; // the stand-in answers the next notification with RST
    const cancelled = once(device, 'observationCancelled');
    device.setValue('/3/0/9', 13);
    expect((await cancelled)[0]).toEqual({ path: '/3/0/9', reason: 'reset' });
    expect(device.observationList()).toEqual([]);
    device.setValue('/3/0/9', 14);
    await settle();
    expect(server.notifications).toHaveLength(1);
  });

  test('an unacknowledged confirmable notification is retransmitted, then the observation is dropped', async () => {
    harness = await startTestFleet({ confirmableEvery: 1 });
    const { server, device, clock } = harness;
    await device.registered();
    await observeBattery(['pmin=0', 'pmax=3600']);
    server.silent = true;
    const cancelled = once(device, 'observationCancelled');
    device.setValue('/3/0/9', 40);
    let outcome: unknown;
    void cancelled.then(([event]) => (outcome = event));
    for (let second = 0; second < 100 && !outcome; second++) {
      clock.advance(1_000);
      await settle(3);
    }
    expect(outcome).toEqual({ path: '/3/0/9', reason: 'timeout' });
    expect(server.notifications).toHaveLength(5); // 1 + MAX_RETRANSMIT (4)
    expect(new Set(server.notifications.map((n) => n.packet.messageId)).size).toBe(1);
  });

  test('paused notifications are held back while requests are still answered, then sent on resume', async () => {
    harness = await startTestFleet();
    const { server, device, clock } = harness;
    await device.registered();
    await observeBattery(['pmin=1', 'pmax=30']);
    device.pauseNotifications();
    device.setValue('/3/0/9', 33);
    clock.advance(120_000);
    await settle();
    expect(server.notifications).toHaveLength(0);
    expect((await server.request(device.port, { method: 'GET', path: '/3/0/9' })).payload).toBe('33');

    device.resumeNotifications();
    await server.waitFor(() => server.notifications.length === 1, 'the held-back notification');
    expect(server.notifications[0].payload).toBe('33');
    await settle();
    expect(server.notifications).toHaveLength(1);
  });
});

describe('simulated device: network behaviour', () => {
  let harness: TestFleet;
  afterEach(() => harness.stop());

  test('while unreachable nothing goes in or out; afterwards it answers again', async () => {
    harness = await startTestFleet();
    const { server, device } = harness;
    await device.registered();
    await server.request(device.port, { method: 'GET', path: '/3/0/9', observe: 0 });
    device.setUnreachable(true);
    await expect(server.request(device.port, { method: 'GET', path: '/3/0/9' }, 200)).rejects.toThrow(/no response/);
    device.setValue('/3/0/9', 3);
    await settle();
    expect(server.notifications).toHaveLength(0);
    expect(device.counters.datagramsDropped).toBeGreaterThanOrEqual(2);

    device.setUnreachable(false);
    expect((await server.request(device.port, { method: 'GET', path: '/3/0/9' })).payload).toBe('3');
  });

  test('Execute reboot: the device leaves without de-registering and registers again from a new port', async () => {
    harness = await startTestFleet({ rebootDelayMs: 1_000 });
    const { server, device, clock } = harness;
    await device.registered();
    const oldPort = device.port;
    await server.request(device.port, { method: 'GET', path: '/3/0/9', observe: 0 });
    const rebooted = once(device, 'rebooted');
    expect((await server.request(device.port, { method: 'POST', path: '/3/0/4' })).code).toBe('2.04');
    const [{ port }] = await rebooted;
    expect(port).not.toBe(oldPort);
    expect(device.port).toBe(port);
    expect(device.isRegistered).toBe(false);
    expect(device.observationList()).toEqual([]);

    clock.advance(1_000);
    await device.registered();
    expect(server.registrations).toHaveLength(2);
    expect(server.registrations[1].from.port).toBe(port);
    expect(server.deregistrations).toEqual([]);
    expect(device.counters).toMatchObject({ reboots: 1, registrations: 2 });
    await expect(server.request(oldPort, { method: 'GET', path: '/3/0/9' }, 200)).rejects.toThrow(/no response/);
  });

  test('a retransmitted request is answered again from memory, not served twice; a CoAP ping gets RST', async () => {
    harness = await startTestFleet();
    const { server, device } = harness;
    await device.registered();
    const served = device.counters.requestsServed;
    const write = generate({
      code: 'PUT',
      confirmable: true,
      messageId: 4242,
      token: Buffer.from('77', 'hex'),
      options: [
        { name: 'Uri-Path', value: Buffer.from('3') },
        { name: 'Uri-Path', value: Buffer.from('0') },
        { name: 'Uri-Path', value: Buffer.from('14') },
        { name: 'Content-Format', value: Buffer.alloc(0) },
      ],
      payload: Buffer.from('+05:30'),
    });
    server.sendRaw(device.port, write);
    server.sendRaw(device.port, write);
    const acks = () => server.received.filter((r) => r.packet.ack && r.packet.messageId === 4242);
    await server.waitFor(() => acks().length === 2, 'two answers');
    expect(acks().map((r) => r.packet.code)).toEqual(['2.04', '2.04']);
    expect(device.counters.requestsServed).toBe(served + 1);
    expect(device.getValue('/3/0/14')).toBe('+05:30');

    server.sendRaw(device.port, generate({ code: '0.00', confirmable: true, messageId: 4243 }));
    await server.waitFor(() => server.received.some((r) => r.packet.reset && r.packet.messageId === 4243), 'a RST');
  });

  test('malformed datagrams and unsupported critical options are dropped or refused, never fatal', async () => {
    harness = await startTestFleet();
    const { server, device, logs } = harness;
    await device.registered();
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 300; i++) {
      const datagram = Buffer.alloc(1 + Math.floor(random() * 64));
      for (let j = 0; j < datagram.length; j++) datagram[j] = Math.floor(random() * 256);
      if (i % 3 === 0) datagram[0] = 0x40 | (datagram[0] & 0x0f); // CoAP version 1, to get past the header check
      server.sendRaw(device.port, datagram);
    }
    await settle(100);
    expect(device.counters.malformedDropped).toBeGreaterThan(0);
    expect(logs.some((line) => /sim-001: dropped a malformed datagram of \d+ bytes from 127\.0\.0\.1/.test(line))).toBe(
      true,
    );
    const bad = generate({
      code: 'GET',
      confirmable: true,
      messageId: 9,
      token: Buffer.from('01', 'hex'),
      options: [
        { name: 'Uri-Path', value: Buffer.from('3') },
        { name: 2051, value: Buffer.from('x') },
      ],
    });
    server.sendRaw(device.port, bad);
    await server.waitFor(() => server.received.some((r) => r.packet.messageId === 9 && r.packet.ack), 'a 4.02');
    expect(server.received.find((r) => r.packet.messageId === 9 && r.packet.ack)?.packet.code).toBe('4.02');
    // Uri-Path "3", then delta 14 with extension 0xfef5: 11 + 269 + 65269 = option 65549, past the 16-bit range.
    const malformed = device.counters.malformedDropped;
    server.sendRaw(device.port, Buffer.from('4101000a01b133e0fef5', 'hex'));
    await settle(100);
    expect(device.counters.malformedDropped).toBe(malformed + 1);
    expect(server.received.some((r) => r.packet.messageId === 10)).toBe(false);
    expect((await server.request(device.port, { method: 'GET', path: '/3/0/9' })).code).toBe('2.05');
    expect(device.isRegistered).toBe(true);
  });
});
