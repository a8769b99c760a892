/**
 * Device identity is cryptographic: a device provisioned with a pre-shared key registers only over DTLS with its own
 * PSK identity, and only its session may change its registration. The attacks of issue 10, on real UDP (the
 * connector's coaps endpoint, OpenSSL on both sides) and the local Cosmos server.
 */
import { randomBytes } from 'node:crypto';
import { Code } from '../../connector/coap/coapMessage';
import { ConnectorHarness, waitUntil } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

const keyA = randomBytes(16);
const keyB = randomBytes(16);
const A = { identity: 'identity-a', key: keyA };
const B = { identity: 'identity-b', key: keyB };
/** A refused handshake shows only as silence (DTLS drops a Finished that does not decrypt): give up after 1.5 s. */
const FAST_FAIL = { timeoutMs: 1_500 };

describe('DTLS device identity', () => {
  const harness = new ConnectorHarness();
  const devices: TestDevice[] = [];
  const track = (device: TestDevice) => (devices.push(device), device);
  const overDtls = async (credentials: { identity: string; key: Buffer }) =>
    track(await TestDevice.overDtls(harness.secureServer, credentials));

  beforeAll(async () => {
    await harness.startWithCredentials({}, 'dtls-test');
    await harness.provisionWith('dev-a', A);
    await harness.provisionWith('dev-b', B);
    await harness.provisionWith('dev-open', 'none');
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await harness.close();
  });

  it('registers a PSK device over DTLS with its own identity, and syncs its twin over its session', async () => {
    const a = await overDtls(A);
    a.setText('/3/0/9', 71);
    const { response, location } = await a.register('dev-a', { links: '</3/0>' });
    expect(response.code).toBe(Code.CREATED);
    expect(location).toMatch(/^\/rd\//);
    await harness.waitForTwin('dev-a', (t) => t.deviceProperties.batteryLevel?.value === 71);
    a.notify('/3/0/9', { payload: Buffer.from('72'), sequence: 5 });
    await harness.waitForTwin('dev-a', (t) => t.deviceProperties.batteryLevel?.value === 72);
    expect(harness.connector.stats().dtls).toMatchObject({ established: 1 });
  });

  it('refuses the handshake of a wrong key and of an unknown identity: nothing registers', async () => {
    await expect(
      TestDevice.overDtls(harness.secureServer, { identity: 'identity-a', key: keyB }, FAST_FAIL),
    ).rejects.toThrow();
    await expect(
      TestDevice.overDtls(harness.secureServer, { identity: 'nobody', key: keyA }, FAST_FAIL),
    ).rejects.toThrow();
    expect(harness.connector.stats().registrations).toBe(1);
  });

  it("refuses a Register with another device's key, and a PSK device over plain CoAP, with 4.03 and a log line", async () => {
    const before = await harness.twin('dev-a');
    const b = await overDtls(B);
    const spoof = await b.register('dev-a', { links: '</3/0>' });
    expect(spoof.response.code).toBe(Code.FORBIDDEN);
    const plain = track(await TestDevice.start(harness.server));
    const downgrade = await plain.register('dev-a', { links: '</3/0>' });
    expect(downgrade.response.code).toBe(Code.FORBIDDEN);
    expect(downgrade.response.payload.toString()).toMatch(/register over DTLS/);
    const refusals = harness.logged('warn', /registration refused/).filter((l) => l.fields?.endpoint === 'dev-a');
    expect(refusals.length).toBeGreaterThanOrEqual(2);
    // No line carries an identity or a key.
    const logText = JSON.stringify(harness.logs);
    for (const secret of ['identity-a', 'identity-b', keyA.toString('base64'), keyA.toString('hex')]) {
      expect(logText).not.toContain(secret);
    }
    const after = await harness.twin('dev-a');
    expect(after?.connection.registrationId).toBe(before?.connection.registrationId);
  });

  it("refuses an Update or De-register of another device's registration from another session", async () => {
    const twin = await harness.twin('dev-a');
    const location = `/rd/${twin?.connection.registrationId}`;
    const b = await overDtls(B);
    expect((await b.update(location, ['lt=4294967295'])).code).toBe(Code.FORBIDDEN);
    expect((await b.deregister(location)).code).toBe(Code.FORBIDDEN);
    // Nor from plain CoAP, where the registration is not even visible.
    const plain = track(await TestDevice.start(harness.server));
    expect((await plain.update(location)).code).toBe(Code.NOT_FOUND);
    const after = await harness.twin('dev-a');
    expect(after?.connection).toMatchObject({ state: 'connected', lifetime: twin?.connection.lifetime });
  });

  it('lets a device provisioned without security register over plain CoAP only', async () => {
    const plain = track(await TestDevice.start(harness.server));
    expect((await plain.register('dev-open', { links: '</3/0>' })).response.code).toBe(Code.CREATED);
  });

  it('keeps a device that resumes its session from a new port (NAT rebinding) registered and syncing', async () => {
    const first = await overDtls(B);
    first.setText('/3/0/9', 10);
    const { location } = await first.register('dev-b', { links: '</3/0>' });
    await harness.waitForTwin('dev-b', (t) => t.deviceProperties.batteryLevel?.value === 10);
    const saved = first.dtlsSession();
    const registrationId = (await harness.twin('dev-b'))?.connection.registrationId;

    // The NAT gives the device a new port: it resumes its session (no PSK handshake) and sends an Update from there.
    const moved = track(await TestDevice.overDtls(harness.secureServer, B, { resume: saved }));
    expect(moved.port).not.toBe(first.port);
    moved.setText('/3/0/9', 11);
    expect((await moved.update(location as string)).code).toBe(Code.CHANGED);
    await moved.waitForObservations(['/3/0/9']);
    moved.notify('/3/0/9', { payload: Buffer.from('12'), sequence: 50 });
    const twin = await harness.waitForTwin('dev-b', (t) => t.deviceProperties.batteryLevel?.value === 12);
    expect(twin.connection.registrationId).toBe(registrationId);
  });

  it('ends the session and the registration when the credentials are revoked; a rotated key replaces the old', async () => {
    await harness.provisionWith('dev-c', { identity: 'identity-c', key: keyA });
    const c = await overDtls({ identity: 'identity-c', key: keyA });
    expect((await c.register('dev-c', { links: '</3/0>' })).response.code).toBe(Code.CREATED);

    harness.setCredentials('dev-c', { identity: 'identity-c', key: keyB });
    await expect(
      TestDevice.overDtls(harness.secureServer, { identity: 'identity-c', key: keyA }, FAST_FAIL),
    ).rejects.toThrow();
    const rotated = await overDtls({ identity: 'identity-c', key: keyB });
    const again = await rotated.register('dev-c', { links: '</3/0>' });
    expect(again.response.code).toBe(Code.CREATED);

    const held = harness.connector.stats().registrations;
    harness.setCredentials('dev-c', 'revoked');
    await waitUntil(() => harness.connector.stats().registrations === held - 1, 5_000, 'the registration to end');
    expect(harness.logged('info', /registration ended/).some((l) => l.fields?.endpoint === 'dev-c')).toBe(true);
    await expect(
      TestDevice.overDtls(harness.secureServer, { identity: 'identity-c', key: keyB }, FAST_FAIL),
    ).rejects.toThrow();
    // The revoked device's old session is gone too: its Update gets no answer.
    await expect(rotated.update(`/rd/x`, [], undefined)).rejects.toThrow();
  });
});
