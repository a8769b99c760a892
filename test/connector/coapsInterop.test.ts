/**
 * coaps:// interop with a DTLS stack nobody here wrote: libcoap's `coap-client` (Debian libcoap3-bin, once built on
 * GnuTLS and once on OpenSSL) registers with the real connector's coaps endpoint using a pre-shared key. The right
 * key gets 2.01 and a connected twin; a wrong key fails the handshake and registers nothing. And the project's simulator
 * (OpenSSL through the DTLS addon's client mode) over the same endpoint, through a key rotation.
 * The test fails, not skips, when coap-client is missing (scripts/ensure-coap-client.sh installs it).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { once } from 'node:events';
import { startSimulatedFleet } from '../../simulator';
import { findOnPath } from '../support/executables';
import { ConnectorHarness } from './support/connectorHarness';

const run = promisify(execFile);

/** Debian installs coap-client once per TLS flavour (the plain `coap-client` may have no DTLS at all). */
const COAP_CLIENTS = ['coap-client-gnutls', 'coap-client-openssl'];

/** libcoap 4.3.1's `-k` takes the key as text, so these keys are 16 printable bytes (hex-provisioned below). */
const RIGHT_KEY = 'coaps-interop-k1';
const WRONG_KEY = 'coaps-interop-k2';

describe('coaps interop with libcoap coap-client', () => {
  const harness = new ConnectorHarness();

  beforeAll(() => harness.startWithCredentials({ deviceTimeoutSeconds: 1 }, 'coaps-interop-test'));
  afterAll(() => harness.close());

  /** `coap-client -u identity -k key`: its output, -v 6 printing the response PDU with its code. */
  const coapClient = async (client: string, identity: string, key: string, args: string[]) => {
    const binary = findOnPath(client);
    if (!binary) {
      throw new Error(
        `libcoap's ${client} was not found on PATH. Install it: apt-get update && apt-get install -y libcoap3-bin`,
      );
    }
    try {
      const { stdout, stderr } = await run(binary, ['-v', '6', '-B', '4', '-u', identity, '-k', key, ...args], {
        timeout: 15_000,
      });
      return `${stdout}\n${stderr}`;
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string };
      return `${failed.stdout ?? ''}\n${failed.stderr ?? String(error)}`;
    }
  };
  const register = (endpoint: string) => [
    '-m',
    'post',
    '-t',
    '40',
    '-e',
    '</3/0>',
    `coaps://127.0.0.1:${harness.secureServer.port}/rd?ep=${endpoint}&lt=60&lwm2m=1.1`,
  ];

  it.each(COAP_CLIENTS)(
    '%s registers with the right key (2.01) and fails the handshake with a wrong one',
    async (client) => {
      const endpoint = `libcoap-${client.replace('coap-client-', '')}`;
      await harness.provisionWith(endpoint, { identity: endpoint, key: Buffer.from(RIGHT_KEY) });
      const before = harness.connector.stats();
      const handshakes = () => harness.connector.stats().dtls?.fullHandshakes;

      // No CoAP answer at all (not even 4.03): the request never got past the handshake.
      const refused = await coapClient(client, endpoint, WRONG_KEY, register(endpoint));
      expect(refused).toMatch(/t:CON c:POST/);
      expect(refused).not.toMatch(/t:ACK/);
      expect(handshakes()).toBe(before.dtls?.fullHandshakes);
      expect(harness.connector.stats().registrations).toBe(before.registrations);
      expect((await harness.twin(endpoint))?.connection.state).not.toBe('connected');

      const registered = await coapClient(client, endpoint, RIGHT_KEY, register(endpoint));
      expect(registered).toMatch(/t:ACK c:2\.01/);
      expect(handshakes()).toBe((before.dtls?.fullHandshakes ?? 0) + 1);
      const twin = await harness.waitForTwin(endpoint, (t) => t.connection.state === 'connected');
      expect(twin.connection).toMatchObject({ lifetime: 60, lwm2mVersion: '1.1' });
      expect(registered).toContain(`Location-Path:rd, Location-Path:${twin.connection.registrationId}`);
    },
  );

  it('the simulator registers over coaps and fills its twin; a rotated key ends its session and its old key is refused', async () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    await harness.provisionWith('simcoaps-001', { identity: 'simcoaps-001', key });
    const logs: string[] = [];
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix: 'simcoaps-',
      server: harness.secureServer,
      psk: new Map([['simcoaps-001', { identity: 'simcoaps-001', key }]]),
      dtlsHandshakeTimeoutMs: 1500,
      changeIntervalMs: 0,
      log: (line) => logs.push(line),
    });
    try {
      const device = fleet.devices[0];
      await device.registered();
      device.setValue('/3/0/9', 42);
      await harness.waitForTwin(
        'simcoaps-001',
        (t) => t.connection.state === 'connected' && t.deviceProperties.batteryLevel?.value === 42,
      );

      const failed = once(device, 'registrationFailed');
      harness.setCredentials('simcoaps-001', { identity: 'simcoaps-001', key: Buffer.alloc(16, 7) });
      const [failure] = await failed;
      expect(logs.some((line) => /DTLS session ended by the server/.test(line))).toBe(true);
      expect(failure.reason).toMatch(/DTLS handshake/);
      expect(device.isRegistered).toBe(false);
    } finally {
      await fleet.stop({ deregister: false });
    }
  });

  it('the simulator de-registers over its session: 2.02, and the twin shows it disconnected', async () => {
    const key = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
    await harness.provisionWith('simcoaps-002', { identity: 'simcoaps-002', key });
    const fleet = await startSimulatedFleet({
      count: 1,
      prefix: 'simcoaps-',
      startIndex: 2,
      server: harness.secureServer,
      psk: new Map([['simcoaps-002', { identity: 'simcoaps-002', key }]]),
      changeIntervalMs: 0,
      deregisterTimeoutMs: 3000,
    });
    const device = fleet.devices[0];
    await device.registered();
    await harness.waitForTwin('simcoaps-002', (t) => t.connection.state === 'connected');
    const deregistered = new Promise<boolean>((resolve) => {
      device.once('deregistered', () => resolve(true));
      setTimeout(() => resolve(false), 5000).unref();
    });
    await fleet.stop();
    expect(await deregistered).toBe(true);
    await harness.waitForTwin('simcoaps-002', (t) => t.connection.state === 'disconnected');
  });

  it('never logs a key', () => {
    const logged = JSON.stringify(harness.logs);
    for (const key of [RIGHT_KEY, WRONG_KEY]) {
      expect(logged).not.toContain(key);
      expect(logged).not.toContain(Buffer.from(key).toString('base64'));
    }
  });
});
