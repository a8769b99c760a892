/**
 * Interop with a CoAP peer nobody here wrote: libcoap's `coap-client` (Debian package libcoap3-bin) reads,
 * discovers and writes a simulated device. Fails, not skips, when coap-client is missing (`npm test` installs it).
 */
import { execFile } from 'child_process';
import { promisify } from 'util';
import { COAP_CLIENT_NAMES, findOnPath } from '../support/executables';
import { startTestFleet, TestFleet } from './testFleet';

const run = promisify(execFile);

function findCoapClient(): string {
  const found = findOnPath(...COAP_CLIENT_NAMES);
  if (found) return found;
  throw new Error(
    `libcoap's coap-client was not found on PATH (tried ${COAP_CLIENT_NAMES.join(', ')}). ` +
      'Install it: apt-get update && apt-get install -y libcoap3-bin',
  );
}

describe('simulated device with libcoap coap-client', () => {
  let harness: TestFleet;
  beforeAll(async () => {
    harness = await startTestFleet();
    await harness.device.registered();
  });
  afterAll(() => harness.stop());

  /** Runs coap-client against the device; -v 6 prints the response PDU with its type and code. */
  const coap = async (args: string[]) => {
    const { stdout, stderr } = await run(findCoapClient(), ['-v', '6', '-B', '5', ...args], { timeout: 15_000 });
    return `${stdout}\n${stderr}`;
  };
  const uri = (suffix: string) => `coap://127.0.0.1:${harness.device.port}${suffix}`;

  test('reads a resource as text/plain, discovers an instance, writes a resource', async () => {
    harness.device.setValue('/3/0/9', 64);
    const read = await coap(['-m', 'get', uri('/3/0/9')]);
    expect(read).toMatch(/t:ACK c:2\.05/);
    expect(read).toMatch(/^64$/m);

    const discover = await coap(['-m', 'get', '-A', '40', uri('/3/0')]);
    expect(discover).toMatch(/t:ACK c:2\.05/);
    expect(discover).toContain('</3/0>,</3/0/0>,');

    const write = await coap(['-m', 'put', '-t', '0', '-e', 'America/New_York', uri('/3/0/15')]);
    expect(write).toMatch(/t:ACK c:2\.04/);
    expect(harness.device.getValue('/3/0/15')).toBe('America/New_York');

    expect(await coap(['-m', 'get', uri('/3/0/4')])).toMatch(/t:ACK c:4\.05/);
  });
});
