/**
 * The credential rules of provisioning, rotation and deprovisioning (shared/twinOperations.ts) on the local Cosmos
 * twin store, with a recording credential writer that can be made to fail: what is written, in which order, and
 * that nothing is half-written when the credential store fails.
 */
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { CredentialWriter } from '../../shared/cosmosCredentialWriter';
import { CredentialRecord } from '../../shared/deviceCredentials';
import {
  CredentialDependencies,
  deprovisionDevice,
  provisionDevice,
  rotateCredentials,
} from '../../shared/twinOperations';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { uniformObservation } from '../support/observation';

class RecordingWriter implements CredentialWriter {
  readonly written: CredentialRecord[] = [];
  failNext = false;

  async write(record: CredentialRecord): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('credentials store unavailable');
    }
    this.written.push(record);
  }
}

const NOW = '2026-03-01T12:00:00.000Z';
const noEndRegistration = async () => undefined;

describe('credential rules of the twin operations', () => {
  let cosmos: TestCosmos;
  let store: CosmosTwinStore;
  let writer: RecordingWriter;
  let clock: number;
  let dependencies: CredentialDependencies;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosTwinStore(
      await openTwinsContainer(cosmos.client, 'twin-operations'),
      93,
      uniformObservation({ pmin: 1, pmax: 60 }),
    );
  });
  afterAll(() => cosmos.close());
  beforeEach(() => {
    writer = new RecordingWriter();
    clock = Date.parse(NOW);
    dependencies = { credentials: writer, now: () => clock++, generateKey: () => Buffer.alloc(16, 0xab) };
  });

  it('a failed credential write leaves no twin, so the PUT can be retried as a creation', async () => {
    writer.failNext = true;
    await expect(provisionDevice(store, dependencies, 'ops-fail', { security: { mode: 'psk' } }, NOW)).rejects.toThrow(
      'credentials store unavailable',
    );
    expect(await store.get('ops-fail')).toBeUndefined();
    const retried = await provisionDevice(store, dependencies, 'ops-fail', { security: { mode: 'psk' } }, NOW);
    expect(retried.created).toBe(true);
    expect(retried.security?.key).toBe(Buffer.alloc(16, 0xab).toString('base64'));
    expect(writer.written).toHaveLength(1);
  });

  it('a PUT of an existing device writes no credentials', async () => {
    await provisionDevice(store, dependencies, 'ops-existing', { security: { mode: 'none' } }, NOW);
    const again = await provisionDevice(store, dependencies, 'ops-existing', { security: { mode: 'psk' } }, NOW);
    expect(again).toMatchObject({ created: false, twin: { security: { mode: 'none' } } });
    expect(again.security).toBeUndefined();
    expect(writer.written.map((r) => r.mode)).toEqual(['none']);
  });

  it('refuses bad input before writing anything', async () => {
    for (const body of [
      undefined,
      {},
      { security: { mode: 'psk', key: 'x' } },
      { security: { mode: 'none' }, version: 2 },
    ]) {
      await expect(provisionDevice(store, dependencies, 'ops-bad', body, NOW)).rejects.toMatchObject({
        code: 'InvalidRequest',
      });
    }
    expect(await store.get('ops-bad')).toBeUndefined();
    expect(writer.written).toEqual([]);
  });

  it('deprovisioning revokes before it deletes the twin; a failed revocation keeps the twin', async () => {
    await provisionDevice(store, dependencies, 'ops-gone', { security: { mode: 'psk' } }, NOW);
    writer.failNext = true;
    await expect(deprovisionDevice(store, dependencies, 'ops-gone', noEndRegistration)).rejects.toThrow();
    expect(await store.get('ops-gone')).toBeDefined();
    await deprovisionDevice(store, dependencies, 'ops-gone', noEndRegistration);
    expect(await store.get('ops-gone')).toBeUndefined();
    expect(writer.written.map((r) => [r.revoked, r.key === undefined])).toEqual([
      [false, false],
      [true, true],
    ]);
  });

  it('rotation writes a newer version, and revokes it again when the device was deprovisioned meanwhile', async () => {
    await provisionDevice(store, dependencies, 'ops-rot', { security: { mode: 'psk' } }, NOW);
    const { security } = await rotateCredentials(store, dependencies, 'ops-rot', { security: { mode: 'psk' } });
    expect(security.key).toBeDefined();
    expect(writer.written[1].version).toBeGreaterThan(writer.written[0].version);

    // A deprovisioning lands between rotation's existence check and its write.
    const racing: CredentialWriter = {
      write: async (record) => {
        if (!record.revoked) await store.delete('ops-rot');
        await writer.write(record);
      },
    };
    await expect(
      rotateCredentials(store, { ...dependencies, credentials: racing }, 'ops-rot', { security: { mode: 'psk' } }),
    ).rejects.toMatchObject({ code: 'DeviceNotFound' });
    expect(writer.written.at(-1)).toMatchObject({ deviceId: 'ops-rot', revoked: true });
  });
});
