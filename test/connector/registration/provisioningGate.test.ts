import { ProvisioningGate } from '../../../connector/registration/provisioningGate';

describe('provisioning gate', () => {
  const source = { address: '192.0.2.7', port: 5683 };
  function gate(provisioned: Set<string>) {
    let now = 1_000_000;
    const lookups: string[] = [];
    const instance = new ProvisioningGate({
      isProvisioned: async (endpoint) => {
        lookups.push(endpoint);
        return provisioned.has(endpoint);
      },
      now: () => now,
      negativeTtlMs: 10_000,
      refusalBurst: 5,
      refusalsPerSecond: 1,
    });
    return { instance, lookups, advance: (ms: number) => (now += ms) };
  }

  it('lets a provisioned endpoint in with one lookup per Register', async () => {
    const { instance, lookups } = gate(new Set(['dev-1']));
    for (let i = 0; i < 3; i++) expect(await instance.authorize('dev-1', source)).toEqual({ ok: true });
    expect(lookups).toEqual(['dev-1', 'dev-1', 'dev-1']);
  });

  it('remembers a refusal for the negative TTL: one lookup, then none until it passes', async () => {
    const { instance, lookups, advance } = gate(new Set());
    const other = { address: '192.0.2.8', port: 1 };
    expect(await instance.authorize('ghost', source)).toMatchObject({ ok: false, reason: 'notProvisioned' });
    advance(9_000);
    expect(await instance.authorize('ghost', other)).toMatchObject({ ok: false, reason: 'notProvisioned' });
    expect(lookups).toEqual(['ghost']);
    advance(1_001);
    await instance.authorize('ghost', other);
    expect(lookups).toEqual(['ghost', 'ghost']);
    expect(instance.stats).toEqual({ lookups: 2, cachedRefusals: 1, rateLimited: 0 });
  });

  it('rate-limits refusals per source address (any port), not the Registers of provisioned devices', async () => {
    const { instance, lookups, advance } = gate(new Set(['dev-1']));
    for (let i = 0; i < 5; i++) {
      const outcome = await instance.authorize(`ghost-${i}`, { address: source.address, port: 1000 + i });
      expect(outcome).toMatchObject({ reason: 'notProvisioned' });
    }
    const limited = await instance.authorize('ghost-9', { address: source.address, port: 9 });
    expect(limited).toMatchObject({ ok: false, reason: 'tooManyRequests', retryAfterSeconds: 1 });
    expect(lookups).toHaveLength(5);
    // Another address is not affected; nor, after a token refills, is this one.
    expect(await instance.authorize('ghost-x', { address: '198.51.100.1', port: 1 })).toMatchObject({
      reason: 'notProvisioned',
    });
    // A device that holds a registration here is looked up even while its address is limited.
    expect(await instance.authorize('dev-1', source, true)).toEqual({ ok: true });
    advance(1_000);
    expect(await instance.authorize('dev-1', source)).toEqual({ ok: true });
  });

  it('keeps its tables bounded under spoofed names and addresses', async () => {
    let now = 0;
    const instance = new ProvisioningGate({
      isProvisioned: async () => false,
      now: () => now++,
      maxRemembered: 100,
      maxSources: 50,
    });
    for (let i = 0; i < 1_000; i++)
      await instance.authorize(`ghost-${i}`, { address: `10.0.${i >> 8}.${i & 255}`, port: 1 });
    const internals = instance as unknown as { refused: Map<string, number>; buckets: Map<string, unknown> };
    expect(internals.refused.size).toBe(100);
    expect(internals.buckets.size).toBe(50);
  });
});
