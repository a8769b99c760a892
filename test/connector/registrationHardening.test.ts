/**
 * What a spoofer or a stranger can make the connector do: little. Real UDP on loopback, the local Cosmos server.
 */
import { Code, OptionNumber, readUintOption } from '../../connector/coap/coapMessage';
import { ConnectorHarness } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

describe('registration hardening', () => {
  const harness = new ConnectorHarness();
  const devices: TestDevice[] = [];
  const device = async (address?: string) => {
    const d = await TestDevice.start(harness.server, 0, address);
    devices.push(d);
    return d;
  };
  beforeAll(() => harness.start({}, 'hardening-test'));
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await harness.close();
  });

  it('answers a Register storm of unprovisioned names with 4.03 then 4.29, at a bounded cost in twin reads', async () => {
    const d = await device('127.0.0.2');
    const codes = new Map<number, number>();
    for (let i = 0; i < 1_000; i++) {
      const { response } = await d.register(`stranger-${i % 10}`);
      codes.set(response.code, (codes.get(response.code) ?? 0) + 1);
    }
    expect([...codes.keys()].sort()).toEqual([Code.FORBIDDEN, Code.TOO_MANY_REQUESTS]);
    const gate = harness.connector.stats().registrationGate;
    // 20 refusals of burst (10 names looked up once each, the rest from the negative cache), then 4.29 unread.
    expect(gate.lookups).toBe(10);
    expect(gate.lookups + gate.cachedRefusals).toBe(codes.get(Code.FORBIDDEN));
    expect(gate.rateLimited).toBe(codes.get(Code.TOO_MANY_REQUESTS));
    expect(harness.connector.stats().registrations).toBe(0);

    // Another host is not limited by it; a provisioned device behind the limited address waits what 4.29 names.
    await harness.provision('neighbour-dev');
    const other = await device('127.0.0.3');
    expect((await other.register('stranger-0')).response.code).toBe(Code.FORBIDDEN);
    const neighbour = await device('127.0.0.2');
    const limited = await neighbour.register('neighbour-dev');
    expect(limited.response.code).toBe(Code.TOO_MANY_REQUESTS);
    expect(readUintOption(limited.response, OptionNumber.MAX_AGE)).toBeGreaterThanOrEqual(1);
  });

  it('observes with random 4-byte tokens', async () => {
    await harness.provision('tokens-dev');
    const d = await device();
    for (const path of ['/3/0/0', '/3/0/1', '/3/0/2', '/3/0/3', '/3/0/9', '/3/0/10', '/3/0/13']) d.setText(path, 1);
    await d.register('tokens-dev', { links: '</3/0>' });
    await d.waitForObservations(['/3/0/0', '/3/0/1', '/3/0/2', '/3/0/3', '/3/0/9', '/3/0/10', '/3/0/13']);
    const tokens = [...d.observations.values()].map((token) => token.readUInt32BE(0));
    expect([...d.observations.values()].every((token) => token.length === 4)).toBe(true);
    expect(new Set(tokens).size).toBe(tokens.length);
    // A counter would give neighbours; random 32-bit tokens are spread over the whole range.
    const sorted = [...tokens].sort((a, b) => a - b);
    const smallestGap = Math.min(...sorted.slice(1).map((t, i) => t - sorted[i]));
    expect(smallestGap).toBeGreaterThan(1_000);
  });

  it('sends a silent device one request (and its retransmissions) until it answers; its Update resumes observing', async () => {
    await harness.provision('silent-dev');
    const d = await device();
    d.setText('/3/0/9', 44);
    d.unreachable = true;
    const { response, location } = await d.register('silent-dev', { links: '</3/0>' });
    expect(response.code).toBe(Code.CREATED);
    // Past the connector's 3 s request bound: every request it sent is in.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    const messageIds = new Set(d.received.map((r) => r.message.messageId));
    expect(messageIds.size).toBe(1);
    expect(harness.logged('warn', /did not answer/).some((l) => l.fields?.endpoint === 'silent-dev')).toBe(true);

    d.unreachable = false;
    expect((await d.update(location as string)).code).toBe(Code.CHANGED);
    await harness.waitForTwin('silent-dev', (t) => t.deviceProperties.batteryLevel?.value === 44);
  });
});
