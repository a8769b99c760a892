/**
 * The simulator's interop options against the connector on real UDP: a Server object at `/1/1`, reporting by Send,
 * and queue mode with sleep (asleep: DeviceAsleep at once; after its wake Update: served again).
 */
import { ConnectorClient } from '../../shared/connectorClient';
import { isTwinError } from '../../shared/errors';
import { SimulatedFleet, SimulatedFleetOptions, startSimulatedFleet } from '../../simulator';
import { ConnectorHarness, TEST_API_KEY, waitUntil } from './support/connectorHarness';

/** The connector's and the sleeping devices' awake window, seconds. */
const AWAKE_WINDOW_SECONDS = 2;

describe('simulator options against the connector (real UDP)', () => {
  const harness = new ConnectorHarness();
  const client = new ConnectorClient(TEST_API_KEY);
  const fleets: SimulatedFleet[] = [];

  beforeAll(() => harness.start({ awakeWindowSeconds: AWAKE_WINDOW_SECONDS }, 'simulator-options-test'));
  afterAll(async () => {
    for (const fleet of fleets) await fleet.stop();
    await harness.close();
  });

  async function fleetOf(prefix: string, options: Partial<SimulatedFleetOptions>): Promise<SimulatedFleet> {
    await harness.provision(`${prefix}001`);
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix,
      server: harness.server,
      lifetime: 60,
      changeIntervalMs: 0,
      ...options,
    });
    fleets.push(fleet);
    await fleet.allRegistered();
    return fleet;
  }

  it('a device whose Server object is /1/1 fills registrationLifetime, defaultMinPeriod and defaultMaxPeriod', async () => {
    const fleet = await fleetOf('srv1-', { serverInstanceId: 1, defaultMinPeriod: 1, defaultMaxPeriod: 7 });
    const twin = await harness.waitForTwin('srv1-001', (t) =>
      ['registrationLifetime', 'defaultMinPeriod', 'defaultMaxPeriod'].every(
        (name) => t.deviceProperties[name]?.value !== undefined,
      ),
    );
    expect(twin.deviceProperties).toMatchObject({
      registrationLifetime: { value: 60 },
      defaultMinPeriod: { value: 1 },
      defaultMaxPeriod: { value: 7 },
    });
    // A deep write reaches /1/1 and a deep read reads it back.
    await client.write(harness.connector.apiUrl, 'srv1-001', 'defaultMaxPeriod', 9);
    expect(fleet.devices[0].getValue('/1/1/3')).toBe(9);
    expect((await client.read(harness.connector.apiUrl, 'srv1-001', 'defaultMaxPeriod')).value).toBe(9);
  });

  it.each([
    ['SenML JSON', 'send-', false],
    ['SenML CBOR', 'sendc-', true],
  ])(
    "a device that reports by Send in %s gets its values into its twin with source 'send'",
    async (_, prefix, cbor) => {
      const fleet = await fleetOf(prefix, { sendIntervalMs: 100, prefersSenmlCbor: cbor, serverInstanceId: 1 });
      const deviceId = `${prefix}001`;
      // Every observation is up (its first response carries a value) before the device stops notifying.
      await harness.waitForTwin(
        deviceId,
        (t) =>
          t.deviceProperties.defaultMaxPeriod?.value !== undefined &&
          Object.values(t.deviceProperties).every((p) => !p.supported || p.value !== undefined),
      );
      const device = fleet.devices[0];
      device.pauseNotifications(); // it reports by Send only from here
      const sentAfter = Date.now() - 1000;
      device.setValue('/3/0/9', 33);
      device.setValue('/3/0/15', 'Europe/Oslo');
      device.setValue('/1/1/3', 90);
      const twin = await harness.waitForTwin(
        deviceId,
        (t) => t.deviceProperties.batteryLevel?.value === 33 && t.deviceProperties.defaultMaxPeriod?.value === 90,
      );
      for (const name of ['batteryLevel', 'timezone', 'defaultMaxPeriod']) {
        expect({ name, ...twin.deviceProperties[name] }).toMatchObject({ name, source: 'send' });
        expect(Date.parse(twin.deviceProperties[name].lastUpdatedTime as string)).toBeGreaterThan(sentAfter);
      }
      expect(twin.deviceProperties.timezone.value).toBe('Europe/Oslo');
      expect(device.counters.sends).toBeGreaterThanOrEqual(1);
    },
  );

  it('a sleeping queue-mode device gets DeviceAsleep at once and is served after its wake Update', async () => {
    const fleet = await fleetOf('sleepy-', {
      queueMode: true,
      awakeWindowMs: AWAKE_WINDOW_SECONDS * 1000,
      sleepIntervalMs: 1500,
    });
    const device = fleet.devices[0];
    const registered = await harness.waitForTwin('sleepy-001', (t) => t.connection.queueMode === true);
    expect(registered.connection.binding).toBe('UQ');

    // Asleep: the connector answers at once and sends the device nothing.
    await waitUntil(() => device.isAsleep, 5000, 'the device asleep');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const served = device.counters.requestsServed;
    const started = Date.now();
    const error = await client.read(harness.connector.apiUrl, 'sleepy-001', 'batteryLevel').catch((e: unknown) => e);
    expect(isTwinError(error, 'DeviceAsleep')).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(device.counters.requestsServed).toBe(served);

    // It wakes with an Update; within its awake window it is served.
    const updated = new Promise((resolve) => device.once('updated', resolve));
    await updated;
    expect(device.isAsleep).toBe(false);
    device.setValue('/3/0/9', 44);
    expect((await client.read(harness.connector.apiUrl, 'sleepy-001', 'batteryLevel')).value).toBe(44);
    expect(device.counters.sleeps).toBeGreaterThanOrEqual(1);
  });
});
