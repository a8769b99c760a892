/**
 * A few thousand hostile datagrams (random bytes, truncated and corrupted messages, bad options, bad TLV/SenML/JSON
 * notifications on a live observation, oversized payloads): each is dropped or refused, the process keeps serving,
 * and a normal registration works right after.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import {
  Code,
  MessageType,
  OptionNumber,
  encodeMessage,
  stringOption,
  uintOption,
} from '../../connector/coap/coapMessage';
import { ConnectorHarness, waitUntil } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
  return {
    next,
    int: (max: number) => Math.floor(next() * max),
    bytes: (length: number) => Buffer.from(Array.from({ length }, () => Math.floor(next() * 256))),
    pick: <T>(items: readonly T[]) => items[Math.floor(next() * items.length)],
  };
}

const REGISTER = (query: string[], body: Buffer, messageId: number) =>
  encodeMessage({
    type: MessageType.CON,
    code: Code.POST,
    messageId,
    token: Buffer.from([1, 2, 3, 4]),
    options: [
      stringOption(OptionNumber.URI_PATH, 'rd'),
      uintOption(OptionNumber.CONTENT_FORMAT, 40),
      ...query.map((q) => stringOption(OptionNumber.URI_QUERY, q)),
    ],
    payload: body,
  });

describe('connector under fuzzed input', () => {
  const harness = new ConnectorHarness();
  const DATAGRAMS = 4000;

  beforeAll(() => harness.start({}, 'fuzz-test'));
  afterAll(() => harness.close());

  it('drops malformed datagrams and payloads, stays up, and registers a device right after', async () => {
    await harness.provision('fuzz-observed');
    await harness.provision('fuzz-after');
    const observed = await TestDevice.start(harness.server);
    observed.setText('/3/0/9', 50);
    observed.setText('/3/0/14', '+01:00');
    await observed.register('fuzz-observed', { links: '</3/0>' });
    await observed.waitForObservations(['/3/0/9', '/3/0/14']);

    const fuzzer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => fuzzer.bind(0, '127.0.0.1', resolve));
    const after = await TestDevice.start(harness.server);
    try {
      const random = generator(20260101);
      const valid = REGISTER(['ep=fuzz-ghost', 'lt=300'], Buffer.from('</3/0>'), 1);
      const kinds = [
        'random',
        'truncated',
        'bitflip',
        'badOptions',
        'badNotification',
        'oversized',
        'garbageRegister',
      ] as const;
      const sent: Record<string, number> = {};
      let notifications = 0;

      for (let i = 0; i < DATAGRAMS; i++) {
        const kind = random.pick(kinds);
        sent[kind] = (sent[kind] ?? 0) + 1;
        let datagram: Buffer;
        switch (kind) {
          case 'random':
            datagram = random.bytes(random.int(200));
            break;
          case 'truncated':
            datagram = valid.subarray(0, random.int(valid.length));
            break;
          case 'bitflip': {
            datagram = Buffer.from(valid);
            for (let flips = 1 + random.int(4); flips > 0; flips--)
              datagram[random.int(datagram.length)] ^= 1 << random.int(8);
            break;
          }
          case 'badOptions': {
            // Header, token, then option bytes with random deltas/lengths (nibbles 13/14/15 included).
            const options = random.bytes(1 + random.int(12));
            datagram = Buffer.concat([
              Buffer.from([0x41, random.pick([1, 2, 3, 4, 0x45]), random.int(256), i & 0xff, 7]),
              options,
            ]);
            break;
          }
          case 'badNotification': {
            // On the live observations, from the observed device's own socket: bad TLV, SenML, JSON, text.
            notifications++;
            const path = random.pick(['/3/0/9', '/3/0/14']);
            const [format, payload] = random.pick([
              [11542, random.bytes(1 + random.int(20))],
              [11542, Buffer.from([0xc8, 0x09, 0xff, 0x01])],
              [
                110,
                Buffer.from(
                  random.pick([
                    '[',
                    '[{"n":1}]',
                    '{"bn":"/3/0/"}',
                    '[{"bn":"/3/0/","n":"9","v":"x"}]',
                    '[{"n":"/3/0/9","v":1e999}]',
                  ]),
                ),
              ],
              [
                11543,
                Buffer.from(
                  random.pick(['{"e":5}', '{"e":[{"n":"9"}]}', '{', '{"bn":"/3/0/","e":[{"n":"x/y","v":1}]}']),
                ),
              ],
              [0, Buffer.from(random.pick(['not a number', '9'.repeat(40), '']))],
              [random.int(65536), random.bytes(random.int(40))],
            ] as [number, Buffer][]);
            observed.notify(path, { format, payload, sequence: 1000 + i, confirmable: random.next() < 0.3 });
            continue;
          }
          case 'oversized':
            datagram =
              random.next() < 0.5
                ? REGISTER(['ep=fuzz-ghost'], Buffer.alloc(2000 + random.int(20000), 0x3c), 2)
                : Buffer.concat([Buffer.from([0x40, 0x02, 0, 3, 0xff]), randomBytes(1200 + random.int(30000))]);
            break;
          case 'garbageRegister':
            datagram = REGISTER(
              [
                random.pick(['ep=', 'ep=x/y', 'ep=fuzz-ghost', 'lt=-1', 'lt=99999999999', 'lwm2m=9.9', 'b=??', 'ep']),
                random.pick(['lt=1e3', 'b=', 'ep=fuzz-ghost', 'Q']),
              ],
              Buffer.from(random.pick(['<', '</3/0>;', '</3/0>,,', '<>', '\u0000\u0001', '</'.repeat(500)])),
              3 + i,
            );
            break;
        }
        fuzzer.send(datagram, harness.connector.coapPort, '127.0.0.1');
        if (i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      // Everything sent has been taken in (or dropped by the kernel under the burst): the counters stop moving.
      let last = -1;
      await waitUntil(
        () => {
          const now = harness.connector.stats().coap!.datagramsIn;
          const settled = now === last;
          last = now;
          return settled;
        },
        10_000,
        'datagram counter settled',
      );
      const stats = harness.connector.stats();
      expect(stats.coap!.datagramsIn).toBeGreaterThan(DATAGRAMS / 2);
      expect(stats.coap!.malformed).toBeGreaterThan(0);
      expect(notifications).toBeGreaterThan(100);
      // Drops are logged, but throttled: a flood costs a bounded number of lines.
      expect(harness.logged('warn', /dropped/).length).toBeGreaterThan(0);
      expect(harness.logs.length).toBeLessThan(500);
      expect(harness.logged('error', /.*/)).toEqual([]);

      // The observed device's twin kept its good value; a valid notification still goes through.
      observed.notify('/3/0/9', { payload: Buffer.from('61'), sequence: 100_000 });
      await harness.waitForTwin('fuzz-observed', (t) => t.deviceProperties.batteryLevel?.value === 61);

      after.setText('/3/0/9', 73);
      const { response } = await after.register('fuzz-after', { links: '</3/0>' });
      expect(response.code).toBe(Code.CREATED);
      await harness.waitForTwin('fuzz-after', (t) => t.deviceProperties.batteryLevel?.value === 73);
      const health = await fetch(`${harness.connector.apiUrl}/health`);
      expect(health.status).toBe(200);
      // The fuzzed registrations never took over the real device's registration.
      expect((await harness.twin('fuzz-observed'))?.connection.lwm2mVersion).toBe('1.1');
    } finally {
      await new Promise<void>((resolve) => fuzzer.close(() => resolve()));
      await observed.close();
      await after.close();
    }
  });
});
