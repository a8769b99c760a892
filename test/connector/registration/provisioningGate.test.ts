import { DeviceSecurity, ProvisioningGate, RegisterAttempt } from '../../../connector/registration/provisioningGate';

describe('provisioning gate', () => {
  const source = { address: '192.0.2.7', port: 5683 };
  const plain = (endpoint: string, from = source): RegisterAttempt => ({ endpoint, source: from, transport: 'coap' });
  function gate(provisioned: Record<string, DeviceSecurity>) {
    let now = 1_000_000;
    const lookups: string[] = [];
    const instance = new ProvisioningGate({
      lookup: async (endpoint) => {
        lookups.push(endpoint);
        return provisioned[endpoint];
      },
      now: () => now,
      negativeTtlMs: 10_000,
      refusalBurst: 5,
      refusalsPerSecond: 1,
    });
    return { instance, lookups, advance: (ms: number) => (now += ms) };
  }
  const none: DeviceSecurity = { mode: 'none' };

  it('lets a provisioned endpoint in with one lookup per Register', async () => {
    const { instance, lookups } = gate({ 'dev-1': none });
    for (let i = 0; i < 3; i++) expect(await instance.authorize(plain('dev-1'))).toEqual({ ok: true });
    expect(lookups).toEqual(['dev-1', 'dev-1', 'dev-1']);
  });

  it('binds a PSK device to DTLS and to its own identity; a device without security to plain CoAP', async () => {
    const { instance } = gate({
      'psk-1': { mode: 'psk', identity: 'id-1' },
      'psk-2': { mode: 'psk', identity: 'id-2' },
      open: none,
    });
    const coaps = (endpoint: string, identity?: string): RegisterAttempt => ({
      endpoint,
      source,
      transport: 'coaps',
      identity,
    });
    expect(await instance.authorize(coaps('psk-1', 'id-1'))).toEqual({ ok: true });
    const cases: [RegisterAttempt, RegExp][] = [
      [plain('psk-1'), /provisioned with a pre-shared key: register over DTLS/],
      [coaps('psk-1', 'id-2'), /identity does not belong to endpoint psk-1/],
      [coaps('psk-1'), /identity does not belong/],
      [coaps('open', 'id-1'), /provisioned without security/],
    ];
    for (const [attempt, detail] of cases) {
      const outcome = await instance.authorize(attempt);
      expect(outcome).toMatchObject({ ok: false, reason: 'wrongSecurity', detail: expect.stringMatching(detail) });
      // The refusal never names an identity.
      expect(JSON.stringify(outcome)).not.toMatch(/id-[12]/);
    }
  });

  it('remembers a refusal for the negative TTL: one lookup, then none until it passes', async () => {
    const { instance, lookups, advance } = gate({});
    const other = { address: '192.0.2.8', port: 1 };
    expect(await instance.authorize(plain('ghost'))).toMatchObject({ ok: false, reason: 'notProvisioned' });
    advance(9_000);
    expect(await instance.authorize(plain('ghost', other))).toMatchObject({ ok: false, reason: 'notProvisioned' });
    expect(lookups).toEqual(['ghost']);
    advance(1_001);
    await instance.authorize(plain('ghost', other));
    expect(lookups).toEqual(['ghost', 'ghost']);
    expect(instance.stats).toEqual({ lookups: 2, cachedRefusals: 1, rateLimited: 0 });
  });

  it('rate-limits refusals per source address (any port), not the Registers of provisioned devices', async () => {
    const { instance, lookups, advance } = gate({ 'dev-1': none });
    for (let i = 0; i < 5; i++) {
      const outcome = await instance.authorize(plain(`ghost-${i}`, { address: source.address, port: 1000 + i }));
      expect(outcome).toMatchObject({ reason: 'notProvisioned' });
    }
    const limited = await instance.authorize(plain('ghost-9', { address: source.address, port: 9 }));
    expect(limited).toMatchObject({ ok: false, reason: 'tooManyRequests', retryAfterSeconds: 1 });
    expect(lookups).toHaveLength(5);
    // Another address is not affected; nor, after a token refills, is this one.
    expect(await instance.authorize(plain('ghost-x', { address: '198.51.100.1', port: 1 }))).toMatchObject({
      reason: 'notProvisioned',
    });
    // A device that holds a registration here is looked up even while its address is limited.
    expect(await instance.authorize(plain('dev-1'), true)).toEqual({ ok: true });
    advance(1_000);
    expect(await instance.authorize(plain('dev-1'))).toEqual({ ok: true });
  });

  it('keeps its tables bounded under spoofed names and addresses', async () => {
    let now = 0;
    const instance = new ProvisioningGate({
      lookup: async () => undefined,
      now: () => now++,
      maxRemembered: 100,
      maxSources: 50,
    });
    for (let i = 0; i < 1_000; i++) {
      await instance.authorize(plain(`ghost-${i}`, { address: `10.0.${i >> 8}.${i & 255}`, port: 1 }));
    }
    const internals = instance as unknown as { refused: Map<string, number>; buckets: Map<string, unknown> };
    expect(internals.refused.size).toBe(100);
    expect(internals.buckets.size).toBe(50);
  });
});
