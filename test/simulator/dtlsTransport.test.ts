/**
 * Simulated devices over coaps:// (DTLS 1.2 PSK): the stand-in LwM2M server behind the connector's DtlsServer, which
 * terminates each device's session and relays its plaintext CoAP over one UDP socket per session, so the stand-in
 * sees every session as a peer of its own. The fleet runs on a manual clock; DTLS timers are OpenSSL's, real time.
 */
import dgram from 'dgram';
import { once } from 'events';
import { DtlsPeer, DtlsServer } from '../../connector/dtls/dtlsServer';
import { ManualClock } from '../../simulator/clock';
import { PskCredentials } from '../../simulator/deviceTransport';
import { SimulatedFleet, SimulatedFleetOptions, startSimulatedFleet } from '../../simulator/simulatedFleet';
import { Lwm2mServerStandIn } from './lwm2mServerStandIn';
import { settle } from './testFleet';

const KEY_1 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const KEY_2 = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');

/** DtlsServer in front of the stand-in: what identity each session proved, and its relay socket's port. */
async function startDtlsFront(standIn: Lwm2mServerStandIn) {
  const relays = new Map<string, dgram.Socket>();
  const sessions: { identity: string; relayPort: number; peer: DtlsPeer }[] = [];
  const ended: { identity?: string; reason: string }[] = [];
  const relayFor = (peer: DtlsPeer, identity: string): dgram.Socket => {
    const key = `${peer.address}:${peer.port}`;
    let relay = relays.get(key);
    if (!relay) {
      const socket = dgram.createSocket('udp4');
      relay = socket;
      relays.set(key, socket);
      socket.bind(0, '127.0.0.1', () => sessions.push({ identity, relayPort: socket.address().port, peer }));
      socket.on('message', (message) => server.send(peer, message));
    }
    return relay;
  };
  const server: DtlsServer = new DtlsServer({
    onDatagram: (peer, plaintext, identity) => relayFor(peer, identity).send(plaintext, standIn.port, '127.0.0.1'),
    onSessionEnd: (peer, identity, reason) => {
      ended.push({ identity, reason });
      const key = `${peer.address}:${peer.port}`;
      relays.get(key)?.close();
      relays.delete(key);
    },
    handshakeTimeoutMs: 2000,
  });
  const { port } = await server.bind('127.0.0.1', 0);
  return {
    server,
    port,
    sessions,
    ended,
    async close() {
      await server.close();
      for (const relay of relays.values()) relay.close();
    },
  };
}

describe('simulated devices over coaps (DTLS PSK)', () => {
  let standIn: Lwm2mServerStandIn;
  let front: Awaited<ReturnType<typeof startDtlsFront>>;
  let fleet: SimulatedFleet | undefined;
  const clock = new ManualClock();
  const logs: string[] = [];

  beforeEach(async () => {
    standIn = await Lwm2mServerStandIn.start();
    front = await startDtlsFront(standIn);
    front.server.setKey('sim-001', KEY_1);
    front.server.setKey('sim-002', KEY_2);
    logs.length = 0;
  });
  afterEach(async () => {
    await fleet?.stop({ deregister: false });
    fleet = undefined;
    await front.close();
    await standIn.close();
  });

  const start = async (psk: Record<string, PskCredentials>, options: Partial<SimulatedFleetOptions> = {}) => {
    fleet = await startSimulatedFleet({
      count: Object.keys(psk).length,
      server: { host: '127.0.0.1', port: front.port },
      psk: new Map(Object.entries(psk)),
      changeIntervalMs: 0,
      registrationsPerSecond: 1000,
      clock,
      log: (line) => logs.push(line),
      ...options,
    });
    return fleet;
  };

  test('each device registers over its own session with its identity; requests and notifications cross it', async () => {
    const started = await start({
      'sim-001': { identity: 'sim-001', key: KEY_1 },
      'sim-002': { identity: 'sim-002', key: KEY_2 },
    });
    clock.advance(5);
    await started.allRegistered();

    expect(standIn.registrations.map((r) => r.query.ep)).toEqual(['sim-001', 'sim-002']);
    await standIn.waitFor(() => front.sessions.length === 2, 'two relayed sessions');
    const sessionOf = (identity: string) => front.sessions.find((s) => s.identity === identity);
    expect(front.sessions.map((s) => s.identity).sort()).toEqual(['sim-001', 'sim-002']);
    expect(sessionOf('sim-001')?.peer.port).toBe(started.device('sim-001')?.port);
    expect(front.server.stats()).toMatchObject({ established: 2, fullHandshakes: 2, failedHandshakes: 0 });

    const relayPort = sessionOf('sim-001')?.relayPort as number;
    const device = started.device('sim-001');
    device?.setValue('/3/0/9', 64);
    expect(await standIn.request(relayPort, { method: 'GET', path: '/3/0/9' })).toMatchObject({
      code: '2.05',
      payload: '64',
    });
    const observed = await standIn.request(relayPort, { method: 'GET', path: '/3/0/9', observe: 0 });
    expect(observed).toMatchObject({ code: '2.05', payload: '64' });
    device?.setValue('/3/0/9', 63);
    await standIn.waitFor(() => standIn.notifications.some((n) => n.payload === '63'), 'the notification');
    expect(started.counters().datagramsDropped).toBe(0);
  });

  test('a session the server refuses fails the Register, which is retried with back-off until a key is set', async () => {
    front.server.deleteKey('sim-001');
    const started = await start({ 'sim-001': { identity: 'sim-001', key: KEY_1 } });
    const device = started.devices[0];
    const [failure] = await once(device, 'registrationFailed');
    expect(failure.reason).toMatch(/^Register failed: DTLS handshake failed/);
    expect(failure.retryInMs).toBeGreaterThanOrEqual(4_000);
    expect(failure.retryInMs).toBeLessThanOrEqual(6_000);
    expect(standIn.registrations).toEqual([]);
    expect(logs.join('\n')).not.toContain(KEY_1.toString('hex'));

    front.server.setKey('sim-001', KEY_1);
    clock.advance(failure.retryInMs - 1);
    await settle();
    expect(standIn.registrations).toEqual([]);
    clock.advance(1);
    await device.registered();
    expect(standIn.registrations.map((r) => r.query.ep)).toEqual(['sim-001']);
    expect(device.counters).toMatchObject({ registrations: 1, registrationFailures: 1 });
  });

  test('a wrong key never registers: the handshake does not finish and the device backs off', async () => {
    // A wrong key shows only as silence (DTLS drops a Finished it cannot decrypt): a short bound keeps this fast.
    const started = await start({ 'sim-001': { identity: 'sim-001', key: KEY_2 } }, { dtlsHandshakeTimeoutMs: 1500 });
    const [failure] = await once(started.devices[0], 'registrationFailed');
    expect(failure.reason).toBe('Register failed: DTLS handshake: not done within 1500 ms');
    expect(standIn.registrations).toEqual([]);
    expect(front.server.stats().established).toBe(0);
  });

  test('a session the server ends (key rotated) makes the device register again over a new one', async () => {
    const started = await start({ 'sim-001': { identity: 'sim-001', key: KEY_1 } });
    const device = started.devices[0];
    await device.registered();
    const reRegistered = once(device, 'registered');
    front.server.endSession({ address: '127.0.0.1', port: device.port });
    await reRegistered;
    expect(logs.some((line) => /DTLS session ended by the server/.test(line))).toBe(true);
    expect(standIn.registrations).toHaveLength(2);
    expect(front.server.stats()).toMatchObject({ established: 1, fullHandshakes: 2 });
  });

  test('a fleet with psk needs an identity and a 16-64 byte key for every device', async () => {
    const server = { host: '127.0.0.1', port: front.port };
    await expect(
      startSimulatedFleet({ count: 2, server, psk: new Map([['sim-001', { identity: 'sim-001', key: KEY_1 }]]) }),
    ).rejects.toThrow('psk has no identity and key for sim-002');
    await expect(
      startSimulatedFleet({
        count: 1,
        server,
        psk: new Map([['sim-001', { identity: 'sim-001', key: KEY_1.subarray(0, 8) }]]),
      }),
    ).rejects.toThrow('the PSK of sim-001 must be 16-64 bytes');
  });
});
