/**
 * Stop and start again: what is pending reaches the twins, sockets close, and the registrations outlive the process
 * in the registration store, so the next start takes them up (the twins never say disconnected).
 */
import { Code } from '../../connector/coap/coapMessage';
import { MemoryRegistrationStore } from '../../connector/registration/registrationStore';
import { ConnectorHarness } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

describe('connector stop and start', () => {
  const registrations = new MemoryRegistrationStore();
  const harness = new ConnectorHarness();
  beforeAll(() => harness.start({ notifyBatchMs: 5_000 }, 'stop-test', registrations));
  afterAll(() => harness.close());

  it('writes pending readings and stops answering; the registration stays stored and the twin connected', async () => {
    await harness.provision('stop-dev');
    const device = await TestDevice.start(harness.server);
    try {
      device.setText('/3/0/9', 30);
      const { response } = await device.register('stop-dev', { links: '</3/0>' });
      expect(response.code).toBe(Code.CREATED);
      await device.waitForObservations(['/3/0/9']);
      // The observe answer waits out the 5 s batch window.
      await harness.waitForTwin('stop-dev', (t) => t.deviceProperties.batteryLevel?.value === 30, 15_000);
      // With a 5 s batch window the notification is still pending when the stop begins.
      device.notify('/3/0/9', { payload: Buffer.from('31'), sequence: 9 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(harness.connector.stats().pendingReadings).toBeGreaterThan(0);
      const { apiUrl } = harness.connector;

      await harness.connector.close();

      const twin = await harness.twin('stop-dev');
      expect(twin?.deviceProperties.batteryLevel.value).toBe(31);
      expect(twin?.connection.state).toBe('connected');
      expect(await registrations.loadAll('connector-test')).toEqual([
        expect.objectContaining({ endpoint: 'stop-dev', id: twin?.connection.registrationId }),
      ]);
      await expect(device.register('stop-dev', {}).then(() => 'answered')).rejects.toThrow('no response');
      await expect(fetch(`${apiUrl}/health`)).rejects.toThrow();
    } finally {
      await device.close();
    }
  });
});

describe('connector start with stored registrations', () => {
  const registrations = new MemoryRegistrationStore();
  const first = new ConnectorHarness();
  let second: ConnectorHarness | undefined;
  afterAll(async () => {
    await second?.close();
    await first.close();
  });

  it('takes up live registrations (same id, same observation tokens) and disconnects those that expired meanwhile', async () => {
    await first.start({ notifyBatchMs: 10 }, 'restart-test', registrations);
    await first.provision('live-dev');
    await first.provision('short-dev');
    const live = await TestDevice.start(first.server);
    const short = await TestDevice.start(first.server);
    try {
      live.setText('/3/0/9', 60);
      short.setText('/3/0/9', 61);
      const { location } = await live.register('live-dev', { links: '</3/0>', lifetime: 300 });
      await short.register('short-dev', { links: '</3/0>', lifetime: 1 });
      await live.waitForObservations(['/3/0/9']);
      await short.waitForObservations(['/3/0/9']);
      await first.waitForTwin('live-dev', (t) => t.deviceProperties.batteryLevel?.value === 60);
      const before = await first.twin('live-dev');
      // The stop is graceful here; the kill -9 case runs as a process in test/integration/connectorRestart.test.ts.
      await first.connector.close();
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // short-dev's 1 s lifetime runs out meanwhile

      second = new ConnectorHarness();
      await second.startOn(first, { notifyBatchMs: 10, coapPort: first.connector.coapPort }, registrations);
      expect(second.connector.stats()).toMatchObject({ registrations: 1, restored: { registrations: 1, expired: 1 } });
      await second.waitForTwin('short-dev', (t) => t.connection.state === 'disconnected');

      // The live device notifies on its old observation and updates its old registration: both accepted.
      live.notify('/3/0/9', { payload: Buffer.from('62'), sequence: 20 });
      const twin = await second.waitForTwin('live-dev', (t) => t.deviceProperties.batteryLevel?.value === 62);
      expect(twin.connection).toMatchObject({ state: 'connected', registrationId: before?.connection.registrationId });
      expect((await live.update(location as string)).code).toBe(Code.CHANGED);
    } finally {
      await live.close();
      await short.close();
    }
  });
});
