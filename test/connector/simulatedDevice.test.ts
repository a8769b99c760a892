/**
 * The connector with the project's device simulator: the twin fills in within pmax, a changing battery reaches the
 * twin no sooner than pmin after the previous notify and no later than pmax, and de-registration flips the state.
 */
import { startSimulatedFleet } from '../../simulator';
import { ConnectorHarness } from './support/connectorHarness';

describe('connector with a simulated device', () => {
  const harness = new ConnectorHarness();
  const PMIN = 1;
  const PMAX = 3;

  beforeAll(() =>
    harness.start(
      {
        observation: {
          device: { pmin: PMIN, pmax: PMAX },
          server: { pmin: PMIN, pmax: PMAX },
          firmwareUpdate: { pmin: PMIN, pmax: PMAX },
        },
      },
      'simulator-test',
    ),
  );
  afterAll(() => harness.close());

  it('fills the twin within pmax and keeps it in sync between pmin and pmax', async () => {
    await harness.provision('simconn-001');
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix: 'simconn-',
      server: harness.server,
      lifetime: 60,
      changeIntervalMs: 100,
    });
    try {
      await fleet.allRegistered();
      const registeredAt = Date.now();
      const twin = await harness.waitForTwin(
        'simconn-001',
        (t) =>
          t.connection.state === 'connected' &&
          Object.keys(t.deviceProperties).length > 0 &&
          Object.values(t.deviceProperties).every((p) => !p.supported || p.value !== undefined),
        PMAX * 1000 + 2000,
      );
      expect(Date.now() - registeredAt).toBeLessThan(PMAX * 1000 + 2000);
      for (const [name, property] of Object.entries(twin.deviceProperties)) {
        if (!property.supported) continue;
        expect({ name, lastUpdatedTime: typeof property.lastUpdatedTime }).toEqual({ name, lastUpdatedTime: 'string' });
      }
      expect(twin.deviceProperties.batteryLevel).toMatchObject({ pmin: PMIN, pmax: PMAX, source: 'notify' });

      // Watch batteryLevel's update times for a few periods.
      const times: number[] = [];
      const watchUntil = Date.now() + 3 * PMAX * 1000;
      while (Date.now() < watchUntil) {
        const current = (await harness.twin('simconn-001'))?.deviceProperties.batteryLevel?.lastUpdatedTime;
        const at = current ? Date.parse(current) : undefined;
        if (at !== undefined && at !== times[times.length - 1]) times.push(at);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(times.length).toBeGreaterThanOrEqual(3);
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      // Arrival times on this side: a notification delayed on its way shortens the next gap a little.
      for (const gap of gaps) {
        expect(gap).toBeGreaterThanOrEqual(PMIN * 1000 - 250);
        expect(gap).toBeLessThanOrEqual(PMAX * 1000 + 500);
      }
    } finally {
      await fleet.stop({ deregister: true });
    }
    await harness.waitForTwin('simconn-001', (t) => t.connection.state === 'disconnected');
  }, 30_000);
});
