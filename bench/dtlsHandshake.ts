/**
 * The DTLS transport (connector/dtls) on one server process: full PSK handshakes per second, server CPU per record
 * echoed (one record decrypted, one encrypted) against a plain UDP echo of the same payloads in the same run, and
 * server memory per established session.
 *
 *   npm run build && node dist/bench/dtlsHandshake.js [--handshakes 2000] [--concurrency 16] [--records 40000]
 *       [--payload 64] [--sessions 1000] [--suite TLS_PSK_WITH_AES_128_CCM_8]
 *
 * The server is a child process (this file with `serve dtls|udp`) so its CPU is its own (/proc, 10 ms resolution);
 * the clients are this process, using the addon's client mode (OpenSSL), so the client side costs little.
 * Records: 16 connections each keep one datagram in flight (ping-pong) until `records` echoes are back.
 */
import { ChildProcess, fork } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { CipherSuite } from '../connector/dtls/dtlsAddon';
import { DtlsClientConnection, DtlsClientContext } from '../connector/dtls/dtlsClient';
import { DtlsServer } from '../connector/dtls/dtlsServer';
import { measureConcurrent, processCpuMs } from './stats';

const KEY = Buffer.from('bench-psk-000001');

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : fallback;
}

/** Child: an echo server on a free port; answers {port} once bound and {rss} on request. */
async function serve(mode: string): Promise<void> {
  let port: number;
  if (mode === 'udp') {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (datagram, peer) => socket.send(datagram, peer.port, peer.address));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    port = socket.address().port;
  } else {
    const server: DtlsServer = new DtlsServer({
      onDatagram: (peer, plaintext) => server.send(peer, plaintext),
      sessionCacheSize: 1000,
    });
    for (let i = 0; i < 100; i++) server.setKey(`bench-${i}`, KEY);
    port = (await server.bind('127.0.0.1', 0)).port;
  }
  process.on('disconnect', () => process.exit(0)); // the benchmark stopped, however it stopped
  process.on('message', async () => {
    // A full GC, then time for V8 to hand the freed pages back: RSS read at once can be megabytes high.
    (global as { gc?: () => void }).gc?.();
    await new Promise((resolve) => setTimeout(resolve, 500));
    process.send?.({ rss: process.memoryUsage().rss });
  });
  process.send?.({ port });
}

async function startServer(mode: 'dtls' | 'udp'): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(__filename, ['serve', mode], { execArgv: ['--expose-gc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { child, port: message.port };
}

async function rssOf(child: ChildProcess): Promise<number> {
  child.send('rss');
  const [message] = (await once(child, 'message')) as [{ rss: number }];
  return message.rss;
}

/** Keeps one datagram in flight per sender until `total` replies have arrived. */
async function pingPong(
  senders: { send: (b: Buffer) => void; onReply: (f: () => void) => void }[],
  total: number,
  payload: Buffer,
) {
  let sent = 0;
  await Promise.all(
    senders.map(
      (sender) =>
        new Promise<void>((resolve) => {
          sender.onReply(() => {
            if (sent < total) {
              sent++;
              sender.send(payload);
            } else resolve();
          });
          sent++;
          sender.send(payload);
        }),
    ),
  );
}

async function measureRecords(mode: 'dtls' | 'udp', suite: CipherSuite, total: number, payload: Buffer) {
  const { child, port } = await startServer(mode);
  const replies: (() => void)[] = [];
  const senders: { send: (b: Buffer) => void; onReply: (f: () => void) => void; close: () => void }[] = [];
  for (let i = 0; i < 16; i++) {
    if (mode === 'udp') {
      const socket = dgram.createSocket('udp4');
      socket.bind(0);
      await once(socket, 'listening');
      socket.on('message', () => replies[i]());
      senders.push({
        send: (b) => socket.send(b, port, '127.0.0.1'),
        onReply: (f) => (replies[i] = f),
        close: () => socket.close(),
      });
    } else {
      const context = new DtlsClientContext({ identity: `bench-${i}`, key: KEY, cipherSuites: [suite] });
      const connection = await DtlsClientConnection.connect(context, '127.0.0.1', port, {
        onMessage: () => replies[i](),
      });
      senders.push({
        send: (b) => connection.send(b),
        onReply: (f) => (replies[i] = f),
        close: () => connection.close(),
      });
    }
  }
  await pingPong(senders, 2000, payload); // warm-up
  const cpu0 = processCpuMs(child.pid!) ?? NaN;
  const t0 = process.hrtime.bigint();
  await pingPong(senders, total, payload);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuMs = (processCpuMs(child.pid!) ?? NaN) - cpu0;
  senders.forEach((s) => s.close());
  child.kill();
  return { perSecond: total / seconds, cpuUsPerRecord: (cpuMs * 1000) / total };
}

async function main(): Promise<void> {
  const handshakes = Number(option('handshakes', '2000'));
  const concurrency = Number(option('concurrency', '16'));
  const records = Number(option('records', '40000'));
  const payload = Buffer.alloc(Number(option('payload', '64')), 0x42);
  const sessions = Number(option('sessions', '1000'));
  const suite = option('suite', 'TLS_PSK_WITH_AES_128_CCM_8') as CipherSuite;

  // 1. Full handshakes per second on one server process.
  const { child, port } = await startServer('dtls');
  const contexts = Array.from(
    { length: 100 },
    (_, i) => new DtlsClientContext({ identity: `bench-${i}`, key: KEY, cipherSuites: [suite] }),
  );
  const connectOnce = async (i: number) =>
    (await DtlsClientConnection.connect(contexts[i % 100], '127.0.0.1', port)).close();
  await measureConcurrent(200, concurrency, connectOnce); // warm-up
  const cpu0 = processCpuMs(child.pid!) ?? NaN;
  const { seconds } = await measureConcurrent(handshakes, concurrency, connectOnce);
  const cpuMs = (processCpuMs(child.pid!) ?? NaN) - cpu0;

  // 2. Memory per established session (after a full GC in the server), `sessions` held open at once.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const rss0 = await rssOf(child);
  const open: DtlsClientConnection[] = [];
  for (let i = 0; i < sessions; i += 50) {
    const batch = Array.from({ length: Math.min(50, sessions - i) }, (_, j) =>
      DtlsClientConnection.connect(contexts[(i + j) % 100], '127.0.0.1', port),
    );
    open.push(...(await Promise.all(batch)));
  }
  const rss1 = await rssOf(child);
  open.forEach((connection) => connection.close());
  child.kill();

  // 3. CPU per echoed record, DTLS against plain UDP, same payloads.
  const udp = await measureRecords('udp', suite, records, payload);
  const dtls = await measureRecords('dtls', suite, records, payload);

  console.log(`DTLS 1.2 PSK (${suite}), one server process, ${handshakes} handshakes at concurrency ${concurrency}`);
  console.log(
    `  full handshakes/s:        ${(handshakes / seconds).toFixed(0)}  (server CPU ${(cpuMs / handshakes).toFixed(3)} ms each)`,
  );
  console.log(
    `  memory per session:       ${((rss1 - rss0) / sessions / 1024).toFixed(1)} KB RSS (${sessions} open sessions)`,
  );
  console.log(`  echo, ${payload.length}-byte payloads, ${records} records, 16 in flight:`);
  console.log(`    plain UDP:  ${udp.perSecond.toFixed(0)}/s, server CPU ${udp.cpuUsPerRecord.toFixed(1)} us/record`);
  console.log(`    DTLS:       ${dtls.perSecond.toFixed(0)}/s, server CPU ${dtls.cpuUsPerRecord.toFixed(1)} us/record`);
  console.log(`    ratio DTLS/UDP server CPU per record: ${(dtls.cpuUsPerRecord / udp.cpuUsPerRecord).toFixed(2)}x`);
}

if (process.argv[2] === 'serve') {
  void serve(process.argv[3]);
} else {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
