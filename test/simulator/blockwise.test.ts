/**
 * The simulator's small-buffer option (`blockSize`) against the connector on real UDP: a device that registers with
 * Block1 and serves values and notifications in 16-byte Block2 blocks fills its twin with whole values.
 */
import { startSimulatedFleet } from '../../simulator';
import { ConnectorHarness } from '../connector/support/connectorHarness';

describe('simulated device with 16-byte blocks (RFC 7959)', () => {
  const harness = new ConnectorHarness();

  beforeAll(() => harness.start({}, 'simulator-blockwise-test'));
  afterAll(() => harness.close());

  it('registers with Block1, and its long values reach the twin whole from reads and notifications', async () => {
    await harness.provision('simblock-long-name-001');
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix: 'simblock-long-name-',
      server: harness.server,
      lifetime: 60,
      blockSize: 16,
    });
    try {
      await fleet.allRegistered();
      const device = fleet.devices[0];
      // `SN-simblock-long-name-001`: 25 bytes, two blocks.
      const serialNumber = device.getValue('/3/0/2');
      expect(Buffer.byteLength(String(serialNumber))).toBeGreaterThan(16);
      await harness.waitForTwin(
        'simblock-long-name-001',
        (t) => t.deviceProperties.serialNumber?.value === serialNumber,
      );

      const changed = `${'Block-wise Devices Incorporated '.repeat(4)}(${'ü'.repeat(20)})`;
      device.setValue('/3/0/0', changed);
      await harness.waitForTwin(
        'simblock-long-name-001',
        (t) => t.deviceProperties.manufacturer?.value === changed,
        8000,
      );
      expect(harness.logged('warn', /dropped/)).toEqual([]);
    } finally {
      await fleet.stop();
    }
  });

  it('refuses a block size that is not a power of two from 16 to 1024', async () => {
    for (const blockSize of [8, 48, 2048]) {
      await expect(startSimulatedFleet({ count: 1, server: harness.server, blockSize })).rejects.toThrow(/blockSize/);
    }
  });
});
