/**
 * LwM2M queue mode on real UDP: a device registered with `Q` is reachable for the awake window after its Register or
 * Update (or its last answer); after that the connector answers requests for it at once with DeviceAsleep and sends
 * the device nothing, until its next Update, which tells the connector's `onDeviceAwake` (the jobs waiting for it run
 * then) and moves the twin's `connection.awakeUntil`.
 */
import { Code } from '../../connector/coap/coapMessage';
import { ConnectorClient } from '../../shared/connectorClient';
import { isTwinError } from '../../shared/errors';
import { ConnectorHarness, TEST_API_KEY, waitUntil } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

const WINDOW_SECONDS = 30;

describe('queue mode (real UDP, shifted clock)', () => {
  const harness = new ConnectorHarness();
  const client = new ConnectorClient(TEST_API_KEY);
  beforeAll(() => harness.start({ awakeWindowSeconds: WINDOW_SECONDS }, 'queue-mode-test'));
  afterAll(() => harness.close());

  const gets = (device: TestDevice, path: string) =>
    device.received.filter((r) => r.message.code === Code.GET && r.path === path).length;

  async function registered(deviceId: string, options: { lwm2m: string; binding?: string; extraQueries?: string[] }) {
    await harness.provision(deviceId);
    const device = await TestDevice.start(harness.server);
    device.setText('/3/0/9', 50);
    const { response, location } = await device.register(deviceId, { links: '</3/0>', lifetime: 3600, ...options });
    expect(response.code).toBe(Code.CREATED);
    await device.waitForObservations(['/3/0/9']);
    return { device, location: location as string };
  }

  it('1.0 binding UQ: awake after Register, DeviceAsleep at once after the window, awake again at its Update', async () => {
    const { device, location } = await registered('q-10', { lwm2m: '1.0', binding: 'UQ' });
    try {
      const registeredTwin = await harness.waitForTwin('q-10', (t) => t.connection.queueMode === true);
      const since = Date.parse(registeredTwin.connection.since as string);
      expect(registeredTwin.connection.awakeUntil).toBe(new Date(since + WINDOW_SECONDS * 1000).toISOString());
      await waitUntil(() => harness.awakened.includes('q-10'), 5000, 'onDeviceAwake after Register');

      // Within the window the device gets the request.
      device.setText('/3/0/9', 51);
      expect((await client.read(harness.connector.apiUrl, 'q-10', 'batteryLevel')).value).toBe(51);

      // Past the window (counted from its last answer): asleep, answered at once, nothing sent to the device.
      harness.clock.advance((WINDOW_SECONDS + 1) * 1000);
      const before = gets(device, '/3/0/9');
      const started = Date.now();
      const error = await client.read(harness.connector.apiUrl, 'q-10', 'batteryLevel').catch((e: unknown) => e);
      expect(isTwinError(error, 'DeviceAsleep')).toBe(true);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(gets(device, '/3/0/9')).toBe(before);

      // Its Update wakes it: the twin's awakeUntil moves, the connector reports it awake, requests reach it again.
      const awakenedBefore = harness.awakened.length;
      expect((await device.update(location)).code).toBe(Code.CHANGED);
      const updated = await harness.waitForTwin(
        'q-10',
        (t) => (t.connection.awakeUntil ?? '') > (registeredTwin.connection.awakeUntil ?? ''),
      );
      expect(Date.parse(updated.connection.awakeUntil as string)).toBeGreaterThan(harness.clock.now());
      await waitUntil(() => harness.awakened.length > awakenedBefore, 5000, 'onDeviceAwake after Update');
      expect(harness.awakened.at(-1)).toBe('q-10');
      device.setText('/3/0/9', 52);
      expect((await client.read(harness.connector.apiUrl, 'q-10', 'batteryLevel')).value).toBe(52);
    } finally {
      await device.close();
    }
  });

  it('1.1 Q parameter is queue mode too; a device without Q is never asleep and has no queueMode', async () => {
    const queued = await registered('q-11', { lwm2m: '1.1', binding: 'U', extraQueries: ['Q'] });
    const plain = await registered('plain-11', { lwm2m: '1.1', binding: 'U' });
    try {
      await harness.waitForTwin('q-11', (t) => t.connection.queueMode === true && t.connection.binding === 'UQ');
      const plainTwin = await harness.waitForTwin('plain-11', (t) => t.connection.state === 'connected');
      expect(plainTwin.connection.queueMode).toBeUndefined();
      expect(plainTwin.connection.awakeUntil).toBeUndefined();
      harness.clock.advance((WINDOW_SECONDS + 1) * 1000);
      const error = await client.read(harness.connector.apiUrl, 'q-11', 'batteryLevel').catch((e: unknown) => e);
      expect(isTwinError(error, 'DeviceAsleep')).toBe(true);
      expect((await client.read(harness.connector.apiUrl, 'plain-11', 'batteryLevel')).value).toBe(50);
      expect(harness.awakened).not.toContain('plain-11');
    } finally {
      await queued.device.close();
      await plain.device.close();
    }
  });
});
