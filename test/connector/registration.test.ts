/**
 * The registration interface and observe/notify against a real connector (UDP on loopback) and the local Cosmos
 * server: what a device and a twin reader see.
 */
import { TWIN_PROPERTIES, findProperty } from '../../shared/catalog';
import {
  Code,
  MessageType,
  OptionNumber,
  encodeMessage,
  stringOption,
  uintOption,
} from '../../connector/coap/coapMessage';
import { encodeTlvEntry, encodeTlvResource, tlvIntegerBytes, TlvKind } from '../../connector/lwm2m/tlv';
import { ConnectorHarness, waitUntil } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

function fillResources(device: TestDevice): void {
  const values: Record<string, string | number> = {
    '/3/0/0': 'Open Mobile Alliance',
    '/3/0/1': 'Lightweight M2M Client',
    '/3/0/2': '345000123',
    '/3/0/3': '1.0',
    '/3/0/9': 87,
    '/3/0/10': 15,
    '/3/0/13': 1367491215,
    '/3/0/14': '+02:00',
    '/3/0/15': 'Europe/Paris',
    '/3/0/17': 'sensor',
    '/3/0/18': 'hw-1',
    '/3/0/20': 1,
    '/3/0/21': 64,
    '/5/0/3': 0,
    '/5/0/5': 0,
    '/5/0/6': 'none',
    '/5/0/7': '0',
    '/1/0/1': 300,
    '/1/0/2': 0,
    '/1/0/3': 3600,
  };
  for (const [path, value] of Object.entries(values)) device.setText(path, value);
}

const ALL_PATHS = TWIN_PROPERTIES.map((e) => e.path);

describe('connector registration interface and sync', () => {
  const harness = new ConnectorHarness();
  const devices: TestDevice[] = [];
  const device = async () => {
    const d = await TestDevice.start(harness.server);
    fillResources(d);
    devices.push(d);
    return d;
  };

  beforeAll(() => harness.start({}, 'registration-test'));
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await harness.close();
  });

  it('refuses an endpoint that is not provisioned with 4.03 and a log line', async () => {
    const d = await device();
    const { response, location } = await d.register('stranger-1');
    expect(response.code).toBe(Code.FORBIDDEN);
    expect(location).toBeUndefined();
    expect(harness.logged('warn', /not provisioned/).some((l) => l.fields?.endpoint === 'stranger-1')).toBe(true);
    expect(harness.connector.stats().registrations).toBe(0);
  });

  it('registers, records the connection, sets pmin/pmax then observes, and fills the twin from the responses', async () => {
    await harness.provision('dev-reg');
    const d = await device();
    const { response, location } = await d.register('dev-reg', { lifetime: 120, lwm2m: '1.1', binding: 'U' });
    expect(response.code).toBe(Code.CREATED);
    expect(location).toMatch(/^\/rd\/[A-Za-z0-9_-]+$/);

    await d.waitForObservations(ALL_PATHS);
    const twin = await harness.waitForTwin('dev-reg', (t) =>
      TWIN_PROPERTIES.every((e) => t.deviceProperties[e.name]?.value !== undefined),
    );
    expect(twin.connection).toMatchObject({
      state: 'connected',
      lifetime: 120,
      binding: 'U',
      lwm2mVersion: '1.1',
      registrationId: location?.split('/')[2],
      connectorId: 'connector-test',
      connectorUrl: 'http://connector-test.invalid:8080',
    });
    expect(twin.connection.since).toBeDefined();
    expect(twin.deviceProperties.batteryLevel).toMatchObject({ value: 87, source: 'notify', pmin: 1, pmax: 5 });
    expect(twin.deviceProperties.manufacturer.value).toBe('Open Mobile Alliance');
    expect(twin.deviceProperties.firmwareUpdateState).toMatchObject({ value: 0, pmin: 3, pmax: 15 });
    expect(twin.deviceProperties.registrationLifetime).toMatchObject({ value: 300, pmin: 2, pmax: 10 });

    // Write-attributes before observe, per resource, with the class's pmin/pmax.
    const battery = d.received.filter((r) => r.path === '/3/0/9');
    expect(battery[0].message.code).toBe(Code.PUT);
    expect(battery[0].queries).toEqual(['pmin=1', 'pmax=5']);
    expect(battery[1].message.code).toBe(Code.GET);
    const firmware = d.received.find((r) => r.path === '/5/0/3' && r.message.code === Code.PUT);
    expect(firmware?.queries).toEqual(['pmin=3', 'pmax=15']);
    // Execute-only and write-only resources are not observed.
    expect(d.received.some((r) => r.path === '/3/0/4' || r.path === '/5/0/1')).toBe(false);
  });

  it('applies notifications, drops an older one (RFC 7641 order), and acknowledges confirmable ones', async () => {
    await harness.provision('dev-notify');
    const d = await device();
    await d.register('dev-notify', { links: '</3/0>' });
    await d.waitForObservations(['/3/0/9']);
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.batteryLevel?.value === 87);

    d.notify('/3/0/9', { payload: Buffer.from('50'), sequence: 10 });
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.batteryLevel?.value === 50);
    d.notify('/3/0/9', { payload: Buffer.from('60'), sequence: 9 }); // older: dropped
    d.notify('/3/0/10', { payload: Buffer.from('33'), sequence: 5 }); // a marker that arrives after it
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.memoryFree?.value === 33);
    await harness.connector.flush();
    expect((await harness.twin('dev-notify'))?.deviceProperties.batteryLevel.value).toBe(50);
    expect(harness.connector.stats().coap!.staleNotifications).toBeGreaterThanOrEqual(1);

    // Sequence numbers wrap at 2^24: 10 -> 2^23 -> 2^24 - 1 -> 3 are each newer than the one before.
    d.notify('/3/0/9', { payload: Buffer.from('42'), sequence: 2 ** 23 });
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.batteryLevel?.value === 42);
    d.notify('/3/0/9', { payload: Buffer.from('41'), sequence: 2 ** 24 - 1 });
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.batteryLevel?.value === 41);
    d.notify('/3/0/9', { payload: Buffer.from('40'), sequence: 3 });
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.batteryLevel?.value === 40);

    // A confirmable notification sent twice (a retransmission) is acknowledged twice and applied once.
    const acks: number[] = [];
    d.socket.on('message', (datagram) => {
      if (datagram.length === 4 && datagram[0] === 0x60) acks.push(datagram.readUInt16BE(2));
    });
    const duplicatesBefore = harness.connector.stats().coap!.duplicateResponses;
    const messageId = d.allocateMessageId();
    const datagram = d.notify('/3/0/9', { payload: Buffer.from('39'), sequence: 4, confirmable: true, messageId });
    d.sendRaw(datagram);
    await waitUntil(() => acks.filter((id) => id === messageId).length === 2, 2000, 'two ACKs');
    await harness.waitForTwin('dev-notify', (t) => t.deviceProperties.batteryLevel?.value === 39);
    expect(harness.connector.stats().coap!.duplicateResponses).toBe(duplicatesBefore + 1);
  });

  it('writes notifications of one device that arrive together as one store call', async () => {
    await harness.provision('dev-batch');
    const d = await device();
    await d.register('dev-batch', { links: '</3/0>' });
    const paths = ['/3/0/9', '/3/0/10', '/3/0/13', '/3/0/20', '/3/0/21'];
    await d.waitForObservations(paths);
    await harness.waitForTwin('dev-batch', (t) => t.deviceProperties.memoryTotal?.value === 64);
    await harness.connector.flush();
    const before = harness.connector.stats().readings;
    // batteryStatus (/3/0/20) is 0-6 in the catalog: 3 there.
    const values = [10, 11, 12, 3, 14];
    paths.forEach((path, i) => d.notify(path, { payload: Buffer.from(String(values[i])), sequence: 100 }));
    const twin = await harness.waitForTwin('dev-batch', (t) => t.deviceProperties.memoryTotal?.value === 14);
    const after = harness.connector.stats().readings;
    expect(after.persisted - before.persisted).toBe(5);
    expect(after.writes - before.writes).toBe(1);
    expect(twin.deviceProperties.batteryLevel.value).toBe(10);
    expect(twin.deviceProperties.currentTime.value).toBe(12);
  });

  it('decodes TLV, SenML JSON, the old LwM2M JSON and opaque notifications', async () => {
    await harness.provision('dev-formats');
    const d = await device();
    await d.register('dev-formats', { links: '</3/0>' });
    await d.waitForObservations(['/3/0/9', '/3/0/14', '/3/0/13', '/3/0/17']);
    d.notify('/3/0/9', { format: 11542, payload: encodeTlvResource(9, tlvIntegerBytes(77)) });
    d.notify('/3/0/13', {
      format: 11542,
      payload: encodeTlvEntry(TlvKind.OBJECT_INSTANCE, 0, encodeTlvResource(13, tlvIntegerBytes(1_700_000_000))),
    });
    d.notify('/3/0/14', { format: 110, payload: Buffer.from('[{"bn":"/3/0/","n":"14","vs":"-05:00"}]') });
    d.notify('/3/0/17', { format: 11543, payload: Buffer.from('{"bn":"/3/0/","e":[{"n":"17","sv":"meter"}]}') });
    const twin = await harness.waitForTwin(
      'dev-formats',
      (t) =>
        t.deviceProperties.batteryLevel?.value === 77 &&
        t.deviceProperties.currentTime?.value === 1_700_000_000 &&
        t.deviceProperties.utcOffset?.value === '-05:00' &&
        t.deviceProperties.deviceType?.value === 'meter',
    );
    expect(twin.deviceProperties.batteryLevel.source).toBe('notify');
    d.notify('/3/0/17', { format: 42, payload: Buffer.from('opaque-type') });
    await harness.waitForTwin('dev-formats', (t) => t.deviceProperties.deviceType?.value === 'opaque-type');
    // A malformed payload is logged and dropped; the twin keeps its value.
    d.notify('/3/0/9', { format: 11542, payload: Buffer.from([0xc8, 0x09, 0x20, 0x01]) });
    d.notify('/3/0/9', { format: 0, payload: Buffer.from('eighty') });
    await waitUntil(() => harness.logged('warn', /unreadable notification/).length >= 2, 2000, 'two warnings');
    await harness.connector.flush();
    expect((await harness.twin('dev-formats'))?.deviceProperties.batteryLevel.value).toBe(77);
  });

  it('marks a resource the device does not have (observe 4.04) unsupported', async () => {
    await harness.provision('dev-partial');
    const d = await device();
    d.resources.delete('/3/0/18');
    await d.register('dev-partial', { links: '</3/0>' });
    const twin = await harness.waitForTwin(
      'dev-partial',
      (t) => t.deviceProperties.hardwareVersion?.supported === false,
    );
    expect(twin.deviceProperties.hardwareVersion.value).toBeUndefined();
    expect(twin.deviceProperties.batteryLevel.supported).toBe(true);
  });

  it('updates (lifetime, binding, object list), refuses an unknown registration with 4.04, and deregisters', async () => {
    await harness.provision('dev-life');
    const d = await device();
    const { location } = await d.register('dev-life', { lifetime: 60, links: '</1/0>' });
    await d.waitForObservations(['/1/0/1', '/1/0/2', '/1/0/3']);
    const update = await d.update(location as string, ['lt=90', 'b=UQ']);
    expect(update.code).toBe(Code.CHANGED);
    await harness.waitForTwin('dev-life', (t) => t.connection.lifetime === 90 && t.connection.binding === 'UQ');

    // A new object list: /3/0 is observed from now on.
    expect((await d.update(location as string, [], '</1/0>,</3/0>')).code).toBe(Code.CHANGED);
    await d.waitForObservations(['/3/0/9']);
    await harness.waitForTwin('dev-life', (t) => t.deviceProperties.batteryLevel?.value === 87);

    expect((await d.update('/rd/no-such-registration')).code).toBe(Code.NOT_FOUND);
    expect((await d.deregister('/rd/no-such-registration')).code).toBe(Code.NOT_FOUND);

    expect((await d.deregister(location as string)).code).toBe(Code.DELETED);
    const twin = await harness.waitForTwin('dev-life', (t) => t.connection.state === 'disconnected');
    expect(Date.parse(twin.connection.since as string)).toBeGreaterThan(0);
    expect((await d.update(location as string)).code).toBe(Code.NOT_FOUND);

    // Observations are cancelled: a notification now gets RST and changes nothing.
    const resetsBefore = d.resetIds.length;
    d.notify('/3/0/9', { payload: Buffer.from('5'), sequence: 50 });
    await waitUntil(() => d.resetIds.length > resetsBefore, 2000, 'an RST');
    await harness.connector.flush();
    expect((await harness.twin('dev-life'))?.deviceProperties.batteryLevel.value).toBe(87);
  });

  it('disconnects a registration whose lifetime ran out without an Update', async () => {
    await harness.provision('dev-expiry');
    const d = await device();
    const { location } = await d.register('dev-expiry', { lifetime: 30, links: '</1/0>' });
    await harness.waitForTwin('dev-expiry', (t) => t.connection.state === 'connected');
    harness.clock.advance(29_000);
    await new Promise((resolve) => setTimeout(resolve, 100)); // a few sweeps: not yet
    expect(harness.connector.stats().registrations).toBeGreaterThan(0);
    expect((await harness.twin('dev-expiry'))?.connection.state).toBe('connected');
    harness.clock.advance(2_000);
    await harness.waitForTwin('dev-expiry', (t) => t.connection.state === 'disconnected');
    expect((await d.update(location as string)).code).toBe(Code.NOT_FOUND);
    expect(harness.logged('info', /registration expired/).some((l) => l.fields?.endpoint === 'dev-expiry')).toBe(true);
  });

  it('announces connects, disconnects and values that are fresh again on twin-events, after the twin says so', async () => {
    await harness.provision('dev-events');
    const d = await device();
    const { location } = await d.register('dev-events', { links: '</3/0>' });
    await d.waitForObservations(['/3/0/9']);
    const connected = await harness.waitForTwin('dev-events', (t) => t.deviceProperties.batteryLevel?.value === 87);
    await waitUntil(() => harness.eventsOf('dev-events').length > 0, 2000, 'the deviceConnected event');
    expect(harness.eventsOf('dev-events')).toEqual([
      { deviceId: 'dev-events', kind: 'deviceConnected', time: connected.connection.since },
    ]);
    // The first values of a registration clear no flag: nothing was stale.
    await harness.connector.flush();
    expect(harness.eventsOf('dev-events')).toHaveLength(1);

    // The sweep flagged batteryLevel; the next notification clears it and says so.
    await harness.store.update('dev-events', (t) => ({
      ...t,
      deviceProperties: {
        ...t.deviceProperties,
        batteryLevel: {
          ...t.deviceProperties.batteryLevel,
          stale: true,
          staleSince: t.connection.since,
          staleReason: 'missedNotify',
        },
      },
    }));
    d.notify('/3/0/9', { payload: Buffer.from('55'), sequence: 20 });
    const fresh = await harness.waitForTwin('dev-events', (t) => t.deviceProperties.batteryLevel?.value === 55);
    expect(fresh.deviceProperties.batteryLevel.stale).toBe(false);
    await waitUntil(() => harness.eventsOf('dev-events').length > 1, 2000, 'the propertyFresh event');
    expect(harness.eventsOf('dev-events')[1]).toEqual({
      deviceId: 'dev-events',
      kind: 'propertyFresh',
      property: 'batteryLevel',
      time: fresh.deviceProperties.batteryLevel.lastUpdatedTime,
    });
    // A notification of a property that was not stale is not an event.
    d.notify('/3/0/9', { payload: Buffer.from('56'), sequence: 21 });
    await harness.waitForTwin('dev-events', (t) => t.deviceProperties.batteryLevel?.value === 56);
    await harness.connector.flush();

    expect((await d.deregister(location as string)).code).toBe(Code.DELETED);
    const gone = await harness.waitForTwin('dev-events', (t) => t.connection.state === 'disconnected');
    await waitUntil(() => harness.eventsOf('dev-events').length > 2, 2000, 'the deviceDisconnected event');
    expect(harness.eventsOf('dev-events').slice(2)).toEqual([
      { deviceId: 'dev-events', kind: 'deviceDisconnected', time: gone.connection.since },
    ]);
    expect(harness.connector.stats().events).toMatchObject({ dropped: 0 });
  });

  it('replaces a registration when the endpoint registers again from a new port', async () => {
    await harness.provision('dev-move');
    const first = await device();
    const old = await first.register('dev-move', { links: '</3/0>' });
    await first.waitForObservations(['/3/0/9']);
    const second = await device();
    second.setText('/3/0/9', 12);
    const fresh = await second.register('dev-move', { links: '</3/0>' });
    expect(fresh.location).not.toEqual(old.location);
    await second.waitForObservations(['/3/0/9']);
    const twin = await harness.waitForTwin('dev-move', (t) => t.deviceProperties.batteryLevel?.value === 12);
    expect(twin.connection.registrationId).toBe(fresh.location?.split('/')[2]);
    expect(twin.connection.state).toBe('connected');
    expect((await first.update(old.location as string)).code).toBe(Code.NOT_FOUND);
    expect(harness.connector.stats().registrations).toBeGreaterThan(0);
    // The device stayed connected throughout: two connects, no disconnect in between.
    await waitUntil(() => harness.eventsOf('dev-move').length === 2, 2000, 'two deviceConnected events');
    expect(harness.eventsOf('dev-move').map((e) => e.kind)).toEqual(['deviceConnected', 'deviceConnected']);
  });

  it('follows a device whose Update comes from a new port (NAT rebinding)', async () => {
    await harness.provision('dev-nat');
    const first = await device();
    const { location } = await first.register('dev-nat', { links: '</3/0>' });
    await first.waitForObservations(['/3/0/9']);
    const rebound = await device();
    expect((await rebound.update(location as string)).code).toBe(Code.CHANGED);
    // A deep read now goes to the new port.
    rebound.setText('/3/0/9', 55);
    const response = await fetch(`${harness.connector.apiUrl}/devices/dev-nat/properties/batteryLevel`, {
      headers: { 'x-connector-key': harness.settings.apiKey },
    });
    expect(await response.json()).toMatchObject({ value: 55 });
    expect(rebound.received.some((r) => r.path === '/3/0/9')).toBe(true);
  });

  it('answers a retransmitted Register once, with the same response', async () => {
    await harness.provision('dev-dup');
    const d = await device();
    const messageId = d.allocateMessageId();
    const datagram = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId,
      token: Buffer.from([1, 2]),
      options: [
        stringOption(OptionNumber.URI_PATH, 'rd'),
        uintOption(OptionNumber.CONTENT_FORMAT, 40),
        stringOption(OptionNumber.URI_QUERY, 'ep=dev-dup'),
        stringOption(OptionNumber.URI_QUERY, 'lt=300'),
      ],
      payload: Buffer.from('</1/0>'),
    });
    const firstResponse = await d.exchange(messageId, datagram);
    const secondResponse = await d.exchange(messageId, datagram);
    expect(secondResponse).toEqual(firstResponse);
    await harness.waitForTwin('dev-dup', (t) => t.connection.state === 'connected');
    expect(
      harness.logs.filter((l) => l.message === 'device registered' && l.fields?.endpoint === 'dev-dup'),
    ).toHaveLength(1);
  });

  it('accepts LwM2M 1.0 and 1.2 clients, an alternate root path, and refuses bad parameters', async () => {
    await harness.provision('dev-v10');
    const v10 = await device();
    v10.resources.clear();
    v10.setText('/lwm2m/3/0/9', 66);
    const registered = await v10.register('dev-v10', { lwm2m: '1.0', links: '</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0>' });
    expect(registered.response.code).toBe(Code.CREATED);
    await harness.waitForTwin(
      'dev-v10',
      (t) => t.deviceProperties.batteryLevel?.value === 66 && t.connection.lwm2mVersion === '1.0',
    );

    await harness.provision('dev-v12');
    const v12 = await device();
    expect((await v12.register('dev-v12', { lwm2m: '1.2', links: '</3/0/9>' })).response.code).toBe(Code.CREATED);
    const twin = await harness.waitForTwin('dev-v12', (t) => t.deviceProperties.batteryLevel?.value === 87);
    expect(Object.keys(twin.deviceProperties)).toEqual(['batteryLevel']);

    expect((await v12.register('dev-v12', { lwm2m: '2.0' })).response.code).toBe(Code.PRECONDITION_FAILED);
    expect((await v12.register('dev-v12', { lifetime: 0 })).response.code).toBe(Code.BAD_REQUEST);
    expect((await v12.register('dev-v12', { links: '</3/0' })).response.code).toBe(Code.BAD_REQUEST);
    expect(findProperty('batteryLevel')).toBeDefined();
  });
});
