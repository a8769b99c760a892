import { Registration } from '../../../connector/registration/registration';
import { RegistrationRegistry } from '../../../connector/registration/registrationRegistry';

function registration(id: string, expiresAt: number): Registration {
  return {
    id,
    endpoint: `ep-${id}`,
    transport: 'coap',
    address: { address: '127.0.0.1', port: 1 },
    lifetime: 1,
    binding: 'U',
    lwm2mVersion: '1.1',
    rootPath: '',
    objects: [],
    registeredAt: 0,
    updatedAt: 0,
    expiresAt,
    connectorId: 'connector-test',
    observations: {},
  };
}

describe('registration registry expiry', () => {
  it('returns exactly the registrations whose expiry passed, in any insertion order', () => {
    const registry = new RegistrationRegistry();
    const times = [50, 10, 40, 30, 20, 60, 70];
    times.forEach((t, i) => registry.add(registration(`r${i}`, t)));
    expect(registry.takeExpired(5)).toEqual([]);
    expect(registry.takeExpired(30).map((r) => r.expiresAt)).toEqual([10, 20, 30]);
    expect(registry.size).toBe(4);
    expect(registry.takeExpired(1000).map((r) => r.expiresAt)).toEqual([40, 50, 60, 70]);
    expect(registry.size).toBe(0);
  });

  it('honours renewals and ignores removed registrations', () => {
    const registry = new RegistrationRegistry();
    const renewed = registration('a', 10);
    const removed = registration('b', 10);
    registry.add(renewed);
    registry.add(removed);
    registry.renew(renewed, 100);
    registry.remove(removed);
    expect(registry.takeExpired(50)).toEqual([]);
    expect(registry.get('a')).toBe(renewed);
    expect(registry.takeExpired(100)).toEqual([renewed]);
    expect(registry.forEndpoint('ep-a')).toBeUndefined();
  });

  it('keeps one heap entry per registration however often it is renewed (an Update loop)', () => {
    const registry = new RegistrationRegistry();
    const looping = registration('loop', 10);
    registry.add(looping);
    for (let i = 1; i <= 10_000; i++) registry.renew(looping, 10 + i);
    const heap = (registry as unknown as { heap: unknown[] }).heap;
    expect(heap.length).toBe(1);
    expect(registry.takeExpired(5_000)).toEqual([]);
    expect(registry.takeExpired(10_010)).toEqual([looping]);
    // An earlier expiry (a shorter lifetime) is honoured at once.
    const shortened = registration('short', 1_000);
    registry.add(shortened);
    registry.renew(shortened, 20_000);
    registry.renew(shortened, 15_000);
    expect(registry.takeExpired(15_000)).toEqual([shortened]);
  });

  it('keeps many registrations in order (heap property under churn)', () => {
    const registry = new RegistrationRegistry();
    const all: Registration[] = [];
    for (let i = 0; i < 2000; i++) {
      const r = registration(`x${i}`, (i * 7919) % 1000);
      all.push(r);
      registry.add(r);
    }
    for (const r of all.filter((_, i) => i % 3 === 0)) registry.renew(r, r.expiresAt + 1000);
    let previous = -1;
    let count = 0;
    for (let now = 0; now <= 2100; now += 37) {
      for (const r of registry.takeExpired(now)) {
        expect(r.expiresAt).toBeLessThanOrEqual(now);
        expect(r.expiresAt).toBeGreaterThan(previous - 37);
        count++;
      }
      previous = now;
    }
    expect(count).toBe(2000);
  });
});
