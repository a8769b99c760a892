import { once } from 'events';
import { startSimulatedFleet } from '../../simulator/simulatedFleet';
import { Lwm2mServerStandIn } from './lwm2mServerStandIn';
import { settle, startTestFleet, TestFleet } from './testFleet';

describe('simulated fleet: LwM2M registration interface', () => {
  let harness: TestFleet | undefined;
  afterEach(async () => {
    await harness?.stop();
    harness = undefined;
  });

  test('each device registers from its own port with ep, lt, lwm2m=1.1, b=U and a link-format body', async () => {
    harness = await startTestFleet({
      count: 3,
      prefix: 'dev-',
      startIndex: 7,
      lifetime: 120,
      registrationsPerSecond: 1000,
    });
    const { server, clock, fleet } = harness;
    clock.advance(5);
    await fleet.allRegistered();

    expect(fleet.devices.map((d) => d.endpoint)).toEqual(['dev-007', 'dev-008', 'dev-009']);
    expect(server.registrations.map((r) => r.query)).toEqual([
      { ep: 'dev-007', lt: '120', lwm2m: '1.1', b: 'U' },
      { ep: 'dev-008', lt: '120', lwm2m: '1.1', b: 'U' },
      { ep: 'dev-009', lt: '120', lwm2m: '1.1', b: 'U' },
    ]);
    for (const registration of server.registrations) {
      expect(registration.contentFormat).toBe(40);
      const links = registration.body.split(',').map((link) => link.split(';')[0]);
      expect(links).toEqual(expect.arrayContaining(['</1/0>', '</3/0>', '</5/0>']));
    }
    const ports = fleet.devices.map((d) => d.port);
    expect(new Set(ports).size).toBe(3);
    expect(server.registrations.map((r) => r.from.port)).toEqual(ports);
    expect(fleet.devices.map((d) => d.registrationLocation)).toEqual(['/rd/r1', '/rd/r2', '/rd/r3']);
    expect(fleet.device('dev-008')?.isRegistered).toBe(true);
    expect(fleet.counters().registrations).toBe(3);
  });

  test('sends an Update at 85 % of the lifetime, from the same port, and again after each one', async () => {
    harness = await startTestFleet({ lifetime: 100 });
    const { server, clock, device } = harness;
    await device.registered();

    clock.advance(84_000);
    await settle();
    expect(server.updates).toHaveLength(0);

    clock.advance(1_000);
    await server.waitFor(() => server.updates.length === 1, 'the first Update');
    expect(server.updates[0]).toEqual({ id: 'r1', query: [], from: { address: '127.0.0.1', port: device.port } });

    await settle();
    clock.advance(85_000);
    await server.waitFor(() => device.counters.updates === 2, 'the second Update');
    expect(server.updates).toHaveLength(2);
    expect(server.registrations).toHaveLength(1);
  });

  test('registers again when an Update gets 4.04 (the server forgot it)', async () => {
    harness = await startTestFleet({ lifetime: 60 });
    const { server, clock, device } = harness;
    await device.registered();
    server.forget('r1');

    clock.advance(51_000);
    await server.waitFor(() => server.registrations.length === 2, 'a new Register');
    await device.registered();
    expect(device.registrationLocation).toBe('/rd/r2');
    expect(device.counters.registrations).toBe(2);
    expect(harness.logs.join('\n')).toMatch(/Update answered 4\.04; registering again/);
  });

  test('a refused Register (4.03) is retried with back-off until it succeeds', async () => {
    harness = await startTestFleet({}, (server) => {
      server.reply = (_request, kind) => (kind === 'register' ? '4.03' : undefined);
    });
    const { server, clock, device } = harness;
    const [failure] = await once(device, 'registrationFailed');
    expect(failure.reason).toBe('Register answered 4.03');
    expect(failure.retryInMs).toBeGreaterThanOrEqual(4_000);
    expect(failure.retryInMs).toBeLessThanOrEqual(6_000);
    expect(harness.logs.join('\n')).toMatch(/sim-001: Register answered 4\.03; registering again in \d+ ms/);

    server.reply = () => undefined;
    clock.advance(failure.retryInMs - 1);
    await settle();
    expect(device.isRegistered).toBe(false);
    clock.advance(1);
    await device.registered();
    expect(device.counters).toMatchObject({ registrationFailures: 1, registrations: 1 });
  });

  test('a Register nobody answers is retransmitted 4 times (same message id), then given up and retried', async () => {
    harness = await startTestFleet({}, (server) => {
      server.silent = true;
    });
    const { server, clock, device } = harness;
    const registers = () => server.received.filter((r) => r.packet.code === '0.02');
    await server.waitFor(() => registers().length === 1, 'the first Register');
    const failed = once(device, 'registrationFailed');
    let failure: { reason: string; retryInMs: number } | undefined;
    void failed.then(([event]) => (failure = event));
    for (let second = 0; second < 100 && !failure; second++) {
      clock.advance(1_000);
      await settle(3);
    }
    expect(failure?.reason).toBe('Register failed: POST /rd: no response within 93000 ms');
    expect(registers()).toHaveLength(5);
    expect(new Set(registers().map((r) => r.packet.messageId)).size).toBe(1);
    expect(device.counters.retransmissions).toBe(4);

    server.silent = false;
    clock.advance(failure?.retryInMs ?? 0);
    await device.registered();
    expect(registers()).toHaveLength(6);
  });

  test('stop() de-registers every device; stop({ deregister: false }) leaves without a word', async () => {
    const server = await Lwm2mServerStandIn.start();
    const options = { server: { host: '127.0.0.1', port: server.port }, changeIntervalMs: 0 };
    const polite = await startSimulatedFleet({ ...options, count: 2, prefix: 'a-', registrationsPerSecond: 1000 });
    await polite.allRegistered();
    await polite.stop();
    expect(server.deregistrations.sort()).toEqual(['r1', 'r2']);
    expect(polite.devices.every((d) => !d.isRegistered)).toBe(true);
    expect(polite.counters().deregistrations).toBe(2);

    const rude = await startSimulatedFleet({ ...options, count: 1, prefix: 'b-' });
    await rude.allRegistered();
    await rude.stop({ deregister: false });
    await settle();
    expect(server.deregistrations).toHaveLength(2);
    await server.close();
  });

  test('a lifetime written by the server goes out in the next Update (lt=...)', async () => {
    harness = await startTestFleet({ lifetime: 300 });
    const { server, device } = harness;
    await device.registered();
    const response = await server.request(device.port, {
      method: 'PUT',
      path: '/1/0/1',
      payload: '45',
      contentFormat: 0,
    });
    expect(response.code).toBe('2.04');
    await server.waitFor(() => server.updates.length === 1, 'an Update after the lifetime write');
    expect(server.updates[0].query).toEqual(['lt=45']);
  });

  test('bad options are refused with an error naming the option', async () => {
    const server = { host: '127.0.0.1', port: 5683 };
    await expect(startSimulatedFleet({ count: 0, server })).rejects.toThrow(/count must be an integer from 1/);
    await expect(startSimulatedFleet({ count: 1, server, prefix: 'a b' })).rejects.toThrow(/prefix/);
    await expect(startSimulatedFleet({ count: 1, server: { host: '127.0.0.1', port: 70000 } })).rejects.toThrow(
      /server\.port/,
    );
    await expect(startSimulatedFleet({ count: 1, server, pmin: 10, pmax: 5 })).rejects.toThrow(/pmax must be >= pmin/);
    await expect(startSimulatedFleet({ count: 1, server, lifetime: 0 })).rejects.toThrow(/lifetime/);
  });
});
