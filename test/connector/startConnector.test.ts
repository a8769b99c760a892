/**
 * Graceful stop: what is pending reaches the twins, held devices are marked disconnected, sockets are closed.
 */
import { Code } from '../../connector/coap/coapMessage';
import { ConnectorHarness } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

describe('connector graceful stop', () => {
  const harness = new ConnectorHarness();
  beforeAll(() => harness.start({ notifyBatchMs: 5_000 }, 'stop-test'));
  afterAll(() => harness.close());

  it('writes pending readings, disconnects the twins it holds, then stops answering', async () => {
    await harness.provision('stop-dev');
    const device = await TestDevice.start(harness.server);
    try {
      device.setText('/3/0/9', 30);
      const { response } = await device.register('stop-dev', { links: '</3/0>' });
      expect(response.code).toBe(Code.CREATED);
      await device.waitForObservations(['/3/0/9']);
      // With a 5 s batch window the notification is still pending when the stop begins.
      device.notify('/3/0/9', { payload: Buffer.from('31'), sequence: 9 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(harness.connector.stats().pendingReadings).toBeGreaterThan(0);
      const { apiUrl } = harness.connector;

      await harness.connector.close();

      const twin = await harness.twin('stop-dev');
      expect(twin?.deviceProperties.batteryLevel.value).toBe(31);
      expect(twin?.connection.state).toBe('disconnected');
      await expect(device.register('stop-dev', {}).then(() => 'answered')).rejects.toThrow('no response');
      await expect(fetch(`${apiUrl}/health`)).rejects.toThrow();
    } finally {
      await device.close();
    }
  });
});
