/**
 * Interop with a CoAP peer nobody here wrote: libcoap's `coap-client` (Debian package libcoap3-bin) registers,
 * updates and de-registers against the connector. The test fails, not skips, when coap-client is missing.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { COAP_CLIENT_NAMES, findOnPath } from '../support/executables';
import { ConnectorHarness } from './support/connectorHarness';

const run = promisify(execFile);

describe('interop with libcoap coap-client', () => {
  const harness = new ConnectorHarness();
  const coapClient = findOnPath(...COAP_CLIENT_NAMES);

  beforeAll(() => harness.start({ deviceTimeoutSeconds: 1 }, 'interop-test'));
  afterAll(() => harness.close());

  /** Runs coap-client; resolves with its output (-v 6 prints the response PDU with its code). */
  const coap = async (args: string[]) => {
    if (!coapClient) {
      throw new Error(
        `libcoap's coap-client was not found on PATH (tried ${COAP_CLIENT_NAMES.join(', ')}). ` +
          'Install it: apt-get update && apt-get install -y libcoap3-bin',
      );
    }
    const { stdout, stderr } = await run(coapClient, ['-v', '6', '-B', '5', ...args], { timeout: 15_000 });
    return `${stdout}\n${stderr}`;
  };
  const uri = (suffix: string) => `coap://127.0.0.1:${harness.connector.coapPort}${suffix}`;

  it('registers, updates and de-registers, and is refused when not provisioned', async () => {
    await harness.provision('libcoap-1');
    const registered = await coap([
      '-m',
      'post',
      '-t',
      '40',
      '-e',
      '</1/0>,</3/0>',
      uri('/rd?ep=libcoap-1&lt=60&lwm2m=1.1&b=U'),
    ]);
    expect(registered).toMatch(/t:ACK c:2\.01/);
    const connected = await harness.waitForTwin('libcoap-1', (t) => t.connection.state === 'connected');
    expect(connected.connection).toMatchObject({ lifetime: 60, lwm2mVersion: '1.1', binding: 'U' });
    expect(registered).toContain(`Location-Path:rd, Location-Path:${connected.connection.registrationId}`);
    const location = `/rd/${connected.connection.registrationId}`;

    expect(await coap(['-m', 'post', uri(`${location}?lt=90&b=UQ`)])).toMatch(/t:ACK c:2\.04/);
    await harness.waitForTwin('libcoap-1', (t) => t.connection.lifetime === 90 && t.connection.binding === 'UQ');

    expect(await coap(['-m', 'delete', uri(location)])).toMatch(/t:ACK c:2\.02/);
    await harness.waitForTwin('libcoap-1', (t) => t.connection.state === 'disconnected');
    expect(await coap(['-m', 'post', uri(`${location}?lt=90`)])).toMatch(/t:ACK c:4\.04/);

    expect(await coap(['-m', 'post', '-t', '40', '-e', '</3/0>', uri('/rd?ep=libcoap-stranger&lt=60')])).toMatch(
      /t:ACK c:4\.03/,
    );
    expect(harness.logged('warn', /not provisioned/).some((l) => l.fields?.endpoint === 'libcoap-stranger')).toBe(true);
  });

  it('registers with its link payload in Block1 blocks (-b 32, RFC 7959)', async () => {
    await harness.provision('libcoap-blocks');
    const links = '</>;rt="oma.lwm2m",</1/0>,</3/0>,</4/0>,</5/0>,</6/0>,</7/0>,</3303/0>,</3303/1>';
    expect(links.length).toBeGreaterThan(64);
    const registered = await coap([
      '-m',
      'post',
      '-b',
      '32',
      '-t',
      '40',
      '-e',
      links,
      uri('/rd?ep=libcoap-blocks&lt=60'),
    ]);
    // coap-client sends block 0 (shown), takes the 2.31 Continues silently, and prints the final response, which
    // echoes the last block (RFC 7959 §2.3).
    expect(registered).toMatch(/Block1:0\/M\/32/);
    expect(registered).toMatch(/t:ACK c:2\.01 .*Block1:2\/_\/32/);
    const connected = await harness.waitForTwin('libcoap-blocks', (t) => t.connection.state === 'connected');
    expect(registered).toContain(`Location-Path:${connected.connection.registrationId}`);
  });
});
