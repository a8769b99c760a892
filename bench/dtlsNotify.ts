/**
 * What DTLS costs the connector, against plain CoAP, in the same run with the same fleet (issue 10): notifications
 * persisted per second and connector CPU per persisted notification; resident memory per registered device (its DTLS
 * session included); and full handshakes + Register per second on one connector.
 *
 *   npm run build && node dist/bench/dtlsNotify.js [--devices 2000] [--rate 2000] [--seconds 20] [--warmup 5]
 *       [--runs 3] [--handshakes 500] [--concurrency 16] [--batch-ms 100]
 *
 * Each run has two rounds, plain CoAP then DTLS, alternating. A round is a fresh connector (child process, wired as
 * connector/main.ts wires it: credentials followed, coaps and plain CoAP both served, readings written from a worker
 * thread to the local Cosmos server this process runs) and a fresh fleet (child process) of the same `devices`
 * devices, provisioned `security: none` in a plain round and with a PSK in a DTLS round. The fleet is not the
 * simulator: each device is a small LwM2M client on its own UDP socket or its own DTLS session
 * (DtlsClientConnection, TLS_PSK_WITH_AES_128_CCM_8) that registers (the connector's real registration interface),
 * answers Write-Attributes and Observe for its 20 readable catalog resources, then notifies: `rate` changes per
 * second over the whole fleet, 15 properties per device in a shuffled order, every 10th notification CON (as the
 * simulator's default), the rest NON.
 *
 * - CPU: the connector process's CPU time (all threads, /proc) over `seconds` after `warmup`, per notification the
 *   twin store reports persisted. The offered rate should stay below what the connector can take in either mode, so
 *   both modes persist the same notifications and the CPU figures compare like for like. Target: DTLS at most 1.5x.
 * - Memory: with every observation established, after 3 s of quiet and a full GC of both isolates (the main one and
 *   the readings thread's), once freed pages are gone: RSS (and V8 heap + external) growth per device while the
 *   second half of the fleet registers (the first half's is printed too). Target: <= 30 KB per registered device
 *   with a DTLS session (the DTLS round's figure); DTLS minus plain is what the session itself costs (OpenSSL's
 *   allocations show in RSS only). Printed with it: what a provisioned device's credential costs, registered or not.
 * - Handshakes (DTLS rounds, after the notify window): `handshakes` devices each open a new session (full handshake)
 *   and Register again, `concurrency` at a time; the rate of 2.01 answers and the connector CPU per handshake +
 *   Register. Those sessions do not answer the connector's requests afterwards.
 * Medians over the runs are printed; BENCH_VERBOSE=1 prints each round's raw counters.
 */
import { ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import path from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import {
  CoapMessage,
  Code,
  MessageType,
  OptionNumber,
  decodeMessage,
  encodeMessage,
  readUintOption,
  stringOption,
  uintOption,
  uriPath,
} from '../connector/coap/coapMessage';
import { DtlsClientConnection, DtlsClientContext } from '../connector/dtls/dtlsClient';
import { DtlsServer } from '../connector/dtls/dtlsServer';
import { Logger } from '../connector/logger';
import { CredentialCache } from '../connector/security/credentialCache';
import { CredentialFeed } from '../connector/security/cosmosCredentialSource';
import { ConnectorStats, RunningConnector, startConnector } from '../connector/startConnector';
import { ThreadedReadingsSink } from '../connector/threadedReadingsSink';
import { EMULATOR_KEY } from '../local/cosmosServer';
import { parseFlags } from '../local/flags';
import { DEFAULT_OBSERVATION } from '../shared/catalog';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { CredentialRecord } from '../shared/deviceCredentials';
import { newTwin } from '../shared/twin';
import { startKeepAliveCosmos } from './notifyThroughput';
import { CHANGING_PROPERTIES, MemorySample, OBSERVED_PATHS } from './notifyThroughputWorker';
import { COLLECT_GARBAGE_CHANNEL } from './collectableReadingsSinkThread';
import { measureConcurrent, median, processCpuMs } from './stats';

const DATABASE = 'bench-dtls-notify';
/** The connector's Node flags, as connector/Dockerfile runs it. */
const CONNECTOR_NODE_FLAGS = ['--optimize-for-size'];
/** Devices registered before the first memory sample (JIT, pools and the write path's working set in place). */
const MEMORY_WARMUP_DEVICES = 200;
/** Quiet time before a memory sample, after every observation is established. */
const MEMORY_SETTLE_MS = 3000;
/** After a full GC, the time V8 takes to hand freed pages back to the OS (RSS read at once was up to 20 MB high). */
const MEMORY_RELEASE_MS = 500;
/** Registers in flight at once while a fleet starts (each one is followed by 40 exchanges of observation). */
const REGISTERS_IN_FLIGHT = 20;
/** Every n-th notification is CON, the rest NON (the simulator's default `confirmableEvery`). */
const CONFIRMABLE_EVERY = 10;
const CONTENT_FORMAT_TEXT = 0;
const CONTENT_FORMAT_LINK = 40;

type Mode = 'plain' | 'dtls';

/** Values of the 5 observed resources the fleet never changes. */
const FIXED_VALUES: Record<string, string> = {
  '/5/0/3': '0',
  '/5/0/5': '0',
  '/1/0/1': '3600',
  '/1/0/2': '0',
  '/1/0/3': '3600',
};

const deviceName = (i: number): string => `dtlsbench-${10000 + i}`;
/** Both child processes derive a device's PSK from its name: nothing secret crosses the IPC channel. */
const pskOf = (name: string): Buffer =>
  createHash('sha256').update(`dtls-notify-bench:${name}`).digest().subarray(0, 16);

// ---------------------------------------------------------------- IPC

interface Request {
  id: number;
  command: string;
  args?: Record<string, unknown>;
}
type Handler = (args: Record<string, unknown>) => unknown;

/** A child process (this file with a role), called over IPC. */
class Child {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly child: ChildProcess;

  constructor(
    readonly role: 'connector' | 'fleet',
    execArgv: string[] = [],
  ) {
    this.child = fork(__filename, [role], {
      execArgv: ['--expose-gc', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply: { id: number; result?: unknown; error?: string }) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error) waiter?.reject(new Error(`${role}: ${reply.error}`));
      else waiter?.resolve(reply.result);
    });
    this.child.on('exit', (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`${role} exited with ${code}`));
      this.pending.clear();
    });
  }

  call<T>(command: string, args: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.role}: ${command} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value as T)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.child.send({ id, command, args } satisfies Request);
    });
  }

  /** CPU time (user + system, all threads) the child has used so far, ms; NaN where /proc is missing. */
  cpuMs(): number {
    return (this.child.pid === undefined ? undefined : processCpuMs(this.child.pid)) ?? NaN;
  }

  async stop(): Promise<void> {
    await this.call('stop', {}, 60_000).catch(() => undefined);
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    await exited;
  }
}

function serve(handlers: Record<string, Handler>): void {
  process.on('message', (message: Request) => {
    const reply = (body: { result?: unknown; error?: string }) => process.send?.({ id: message.id, ...body });
    const handler = handlers[message.command];
    if (!handler) return reply({ error: `unknown command ${message.command}` });
    Promise.resolve()
      .then(() => handler(message.args ?? {}))
      .then(
        (result) => reply({ result }),
        (error: unknown) => reply({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Collects garbage in both isolates (main and readings thread), lets the freed pages go, then samples. */
async function memory(): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const readingsThread = new BroadcastChannel(COLLECT_GARBAGE_CHANNEL);
  readingsThread.postMessage('collect');
  readingsThread.close();
  gc?.();
  gc?.();
  await sleep(MEMORY_RELEASE_MS);
  gc?.();
  await sleep(MEMORY_RELEASE_MS);
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external };
}

// ---------------------------------------------------------------- connector role

function connectorRole(): Record<string, Handler> {
  let connector: RunningConnector | undefined;
  let dispose: (() => Promise<void>) | undefined;
  const log: Logger = {
    info: () => undefined,
    warn: (message, fields) => process.stderr.write(`[connector warn] ${message} ${JSON.stringify(fields ?? {})}\n`),
    error: (message, fields) => process.stderr.write(`[connector error] ${message} ${JSON.stringify(fields ?? {})}\n`),
  };
  return {
    /** A connector as main.ts wires it, with the fleet's credentials (`mode`: all PSK, or all `none`). */
    start: async (args) => {
      const cosmos = {
        endpoint: args.cosmosEndpoint as string,
        databaseName: DATABASE,
        key: EMULATOR_KEY,
        trustedCertificatePath: args.certPath as string,
      };
      const client = createCosmosClient(cosmos);
      const store = new CosmosTwinStore(await openTwinsContainer(client, DATABASE), 93);
      const readingsSink = await ThreadedReadingsSink.start({
        cosmos,
        graceSeconds: 93,
        observation: DEFAULT_OBSERVATION,
        script: path.join(__dirname, 'collectableReadingsSinkThread.js'),
      });
      dispose = async () => {
        await readingsSink.close();
        client.dispose();
      };
      const version = Date.now();
      const records: CredentialRecord[] = Array.from({ length: args.devices as number }, (_, i) => {
        const name = deviceName(i);
        const base = {
          id: name,
          deviceId: name,
          version,
          updatedTime: new Date(version).toISOString(),
          revoked: false,
        };
        return args.mode === 'dtls'
          ? { ...base, mode: 'psk', identity: name, key: pskOf(name).toString('base64') }
          : { ...base, mode: 'none' };
      });
      const credentials: CredentialFeed = {
        start: async (onRecords) => (onRecords(records), records.length),
        stop: async () => undefined,
      };
      connector = await startConnector({
        store,
        readingsSink,
        credentials,
        log,
        config: {
          instanceId: 'bench-dtls',
          coapPort: 0,
          coapsPort: 0,
          plainCoapEnabled: true,
          coapAddress: '127.0.0.1',
          apiPort: 0,
          apiAddress: '127.0.0.1',
          apiUrl: 'http://127.0.0.1:0',
          apiKey: 'bench',
          deviceTimeoutSeconds: 30,
          observation: {
            device: { pmin: 0, pmax: 3600 },
            server: { pmin: 0, pmax: 3600 },
            firmwareUpdate: { pmin: 0, pmax: 3600 },
          },
          stalenessGraceSeconds: 93,
          notifyBatchMs: args.batchMs as number,
          maxConcurrentTwinWrites: 4,
          expirySweepMs: 1000,
        },
      });
      return { port: args.mode === 'dtls' ? connector.coapsPort : connector.coapPort };
    },
    stats: () => connector?.stats(),
    memory: () => memory(),
    /**
     * What the connector holds per provisioned PSK device whether or not it is registered (its credential record
     * and the key in the DTLS server's keyring): loaded at start in a round, so not in the growth a round measures.
     */
    credentialMemory: async (args) => {
      const count = args.devices as number;
      const keyring = new DtlsServer({ onDatagram: () => undefined });
      const cache = new CredentialCache({ keyring, log });
      const before = await memory();
      const version = Date.now();
      for (let from = 0; from < count; from += 1000) {
        cache.apply(
          Array.from({ length: Math.min(1000, count - from) }, (_, k): CredentialRecord => {
            const name = deviceName(from + k);
            const updatedTime = new Date(version).toISOString();
            const key = pskOf(name).toString('base64');
            return { id: name, deviceId: name, version, updatedTime, revoked: false, mode: 'psk', identity: name, key };
          }),
        );
      }
      const after = await memory();
      await keyring.close();
      return (after.rss - before.rss) / count;
    },
    stop: async () => {
      await connector?.close();
      await dispose?.();
      return true;
    },
  };
}

// ---------------------------------------------------------------- fleet role

/** How a bench device reaches the server: a plain UDP socket or a DTLS session; `receive` gets what arrives. */
interface Link {
  send(datagram: Buffer): void;
  close(): void;
  receive: (datagram: Buffer) => void;
}

async function plainLink(port: number): Promise<Link> {
  const socket = dgram.createSocket('udp4');
  const link: Link = {
    send: (datagram) => socket.send(datagram, port, '127.0.0.1'),
    close: () => socket.close(),
    receive: () => undefined,
  };
  socket.on('message', (datagram) => link.receive(datagram));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return link;
}

async function dtlsLink(context: DtlsClientContext, port: number): Promise<Link> {
  const link: Link = { send: () => undefined, close: () => undefined, receive: () => undefined };
  const connection = await DtlsClientConnection.connect(context, '127.0.0.1', port, {
    onMessage: (datagram) => link.receive(datagram),
  });
  link.send = (datagram) => connection.send(datagram);
  link.close = () => connection.close(false);
  return link;
}

/**
 * A minimal LwM2M client: Register (CON, retransmitted), 2.04 to Write-Attributes and Execute, 2.05 to Read and
 * Observe (text/plain), notifications with an increasing Observe number.
 */
class BenchDevice {
  readonly values = new Map<string, string>();
  private readonly tokens = new Map<string, Buffer>();
  private messageId = Math.floor(Math.random() * 0xffff);
  private sequence = 2;
  private sent = 0;
  private registering?: { messageId: number; resolve: (code: number) => void };
  link?: Link;

  constructor(readonly name: string) {
    for (const property of CHANGING_PROPERTIES) this.values.set(property.path, String(property.value(0)));
    for (const [resource, value] of Object.entries(FIXED_VALUES)) this.values.set(resource, value);
  }

  /** Registers over `link`; resolves with the response code (2.01 expected). `answer`: serve the server's requests. */
  register(link: Link, answer = true): Promise<number> {
    const messageId = this.nextMessageId();
    const datagram = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId,
      token: Buffer.from([1, 2, 3, 4]),
      options: [
        stringOption(OptionNumber.URI_PATH, 'rd'),
        uintOption(OptionNumber.CONTENT_FORMAT, CONTENT_FORMAT_LINK),
        stringOption(OptionNumber.URI_QUERY, `ep=${this.name}`),
        stringOption(OptionNumber.URI_QUERY, 'lt=3600'),
        stringOption(OptionNumber.URI_QUERY, 'lwm2m=1.1'),
        stringOption(OptionNumber.URI_QUERY, 'b=U'),
      ],
      payload: Buffer.from('</1/0>,</3/0>,</5/0>'),
    });
    if (answer) this.link = link;
    return new Promise<number>((resolve, reject) => {
      let attempts = 0;
      const timer = setInterval(() => {
        if (++attempts > 4) {
          clearInterval(timer);
          reject(new Error(`${this.name}: no answer to Register`));
        } else link.send(datagram);
      }, 3000);
      this.registering = {
        messageId,
        resolve: (code) => {
          clearInterval(timer);
          this.registering = undefined;
          resolve(code);
        },
      };
      link.send(datagram);
    });
  }

  receive(datagram: Buffer, link: Link): void {
    let message: CoapMessage;
    try {
      message = decodeMessage(datagram);
    } catch {
      return;
    }
    if (message.type === MessageType.ACK && this.registering?.messageId === message.messageId) {
      this.registering.resolve(message.code);
      return;
    }
    if (message.code < Code.GET || message.code > Code.DELETE || link !== this.link) return; // ACK, RST, stale
    const resource = '/' + uriPath(message).join('/');
    const reply = (code: number, extra: Partial<CoapMessage> = {}) =>
      link.send(
        encodeMessage({
          type: message.type === MessageType.CON ? MessageType.ACK : MessageType.NON,
          code,
          messageId: message.type === MessageType.CON ? message.messageId : this.nextMessageId(),
          token: message.token,
          options: [],
          payload: Buffer.alloc(0),
          ...extra,
        }),
      );
    if (message.code === Code.PUT || message.code === Code.POST) return reply(Code.CHANGED);
    if (message.code !== Code.GET) return reply(Code.METHOD_NOT_ALLOWED);
    const value = this.values.get(resource);
    if (value === undefined) return reply(Code.NOT_FOUND);
    const observe = readUintOption(message, OptionNumber.OBSERVE);
    if (observe === 0) this.tokens.set(resource, message.token);
    if (observe === 1) this.tokens.delete(resource);
    reply(Code.CONTENT, {
      options: [
        ...(observe === 0 ? [uintOption(OptionNumber.OBSERVE, this.sequence++)] : []),
        uintOption(OptionNumber.CONTENT_FORMAT, CONTENT_FORMAT_TEXT),
      ],
      payload: Buffer.from(value),
    });
  }

  /** Changes a value and notifies it when observed; false when the resource is not observed. */
  change(resource: string, value: string): boolean {
    this.values.set(resource, value);
    const token = this.tokens.get(resource);
    if (!token || !this.link) return false;
    this.sequence = (this.sequence + 1) & 0xffffff;
    this.link.send(
      encodeMessage({
        type: this.sent++ % CONFIRMABLE_EVERY === 0 ? MessageType.CON : MessageType.NON,
        code: Code.CONTENT,
        messageId: this.nextMessageId(),
        token,
        options: [
          uintOption(OptionNumber.OBSERVE, this.sequence),
          uintOption(OptionNumber.CONTENT_FORMAT, CONTENT_FORMAT_TEXT),
        ],
        payload: Buffer.from(value),
      }),
    );
    return true;
  }

  private nextMessageId(): number {
    this.messageId = (this.messageId + 1) & 0xffff;
    return this.messageId;
  }
}

function fleetRole(): Record<string, Handler> {
  const devices: BenchDevice[] = [];
  const contexts = new Map<string, DtlsClientContext>();
  const spares: Link[] = [];
  let mode: Mode = 'plain';
  let port = 0;
  let driver: NodeJS.Timeout | undefined;
  const counters = { changes: 0, notificationsSent: 0, unobserved: 0 };

  const contextOf = (name: string) => {
    let context = contexts.get(name);
    if (!context) contexts.set(name, (context = new DtlsClientContext({ identity: name, key: pskOf(name) })));
    return context;
  };
  const connect = async (device: BenchDevice): Promise<Link> => {
    const link = mode === 'dtls' ? await dtlsLink(contextOf(device.name), port) : await plainLink(port);
    link.receive = (datagram) => device.receive(datagram, link);
    return link;
  };

  return {
    /** Registers devices `from`..`to`-1 (REGISTERS_IN_FLIGHT at a time); resolves when every one has its 2.01. */
    start: async (args) => {
      mode = args.mode as Mode;
      port = args.port as number;
      const from = args.from as number;
      const to = args.to as number;
      for (let i = devices.length; i < to; i++) devices.push(new BenchDevice(deviceName(i)));
      await measureConcurrent(to - from, REGISTERS_IN_FLIGHT, async (k) => {
        const device = devices[from + k];
        const code = await device.register(await connect(device));
        if (code !== Code.CREATED) throw new Error(`${device.name}: Register answered ${code >> 5}.${code & 31}`);
      });
      return devices.length;
    },
    /** `rate` changes per second over the fleet, in 10 ms slices; each (device, property) pair once per cycle. */
    drive: (args) => {
      const order = shuffled(devices.length * CHANGING_PROPERTIES.length);
      const perSlice = ((args.rate as number) * 10) / 1000;
      const started = Date.now();
      let budget = 0;
      let cursor = 0;
      let slices = 0;
      const slice = () => {
        slices++;
        budget += perSlice;
        for (; budget >= 1; budget--) {
          const pair = order[cursor++ % order.length];
          const property = CHANGING_PROPERTIES[pair % CHANGING_PROPERTIES.length];
          const device = devices[Math.floor(pair / CHANGING_PROPERTIES.length)];
          counters.changes++;
          if (device.change(property.path, String(property.value(counters.changes)))) counters.notificationsSent++;
          else counters.unobserved++;
        }
        driver = setTimeout(slice, Math.max(0, started + (slices + 1) * 10 - Date.now()));
      };
      driver = setTimeout(slice, 10);
      return true;
    },
    counters: () => counters,
    halt: () => (clearTimeout(driver), true),
    /**
     * `count` devices each open a new DTLS session (a full handshake) and Register again over it, `concurrency` at a
     * time; the new sessions ignore the connector's requests. Returns the seconds it took.
     */
    handshakes: async (args) => {
      const count = Math.min(args.count as number, devices.length);
      const { seconds } = await measureConcurrent(count, args.concurrency as number, async (i) => {
        const device = devices[i];
        const link = await dtlsLink(contextOf(device.name), port);
        link.receive = (datagram) => device.receive(datagram, link);
        spares.push(link);
        const code = await device.register(link, false);
        if (code !== Code.CREATED) throw new Error(`${device.name}: Register answered ${code >> 5}.${code & 31}`);
      });
      return seconds;
    },
    stop: () => {
      clearTimeout(driver);
      for (const device of devices) device.link?.close();
      for (const link of spares) link.close();
      return true;
    },
  };
}

/** 0..n-1 in a fixed pseudo-random order (Fisher-Yates with a small LCG: the same order every run). */
function shuffled(n: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let state = 12345;
  for (let i = n - 1; i > 0; i--) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const j = state % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// ---------------------------------------------------------------- orchestrator

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Settings {
  devices: number;
  rate: number;
  seconds: number;
  warmup: number;
  handshakes: number;
  concurrency: number;
  batchMs: number;
}

interface RoundResult {
  persistedPerSecond: number;
  receivedPerSecond: number;
  offeredPerSecond: number;
  /** Connector CPU per persisted notification, µs. */
  cpuUsPerNotify: number;
  /** RSS growth per device over the fleet's second half. */
  rssPerDevice: number;
  /** The same over the first half (after the warm-up), allocators' high-water marks included. */
  firstHalfRssPerDevice: number;
  heapExternalPerDevice: number;
  handshakesPerSecond?: number;
  /** Connector CPU per full handshake + Register, ms. */
  cpuMsPerHandshake?: number;
}

async function round(mode: Mode, s: Settings, cosmos: { endpoint: string; certPath: string }): Promise<RoundResult> {
  const connector = new Child('connector', CONNECTOR_NODE_FLAGS);
  const fleet = new Child('fleet');
  try {
    const { port } = await connector.call<{ port: number }>('start', {
      mode,
      devices: s.devices,
      batchMs: s.batchMs,
      cosmosEndpoint: cosmos.endpoint,
      certPath: cosmos.certPath,
    });
    const stats = () => connector.call<ConnectorStats>('stats');
    const endpointStats = (current: ConnectorStats) => (mode === 'dtls' ? current.coaps : current.coap);
    const observed = async (devices: number): Promise<MemorySample> => {
      const deadline = Date.now() + 300_000;
      for (;;) {
        const current = await stats();
        if (current.observations >= devices * OBSERVED_PATHS.length && current.pendingReadings === 0) break;
        if (Date.now() > deadline) throw new Error(`${mode}: ${current.observations} observations of ${devices}`);
        await sleep(200);
      }
      await sleep(MEMORY_SETTLE_MS);
      return connector.call<MemorySample>('memory');
    };
    // Samples after the warm-up, half the fleet and the whole fleet. The figure is the second half's growth per
    // device: the first half also raises the allocators' high-water marks (the readings thread's malloc arena grew
    // by ~12 MB while the first 1,800 devices' observations were written, and never again), which is a one-off of
    // the burst, not a cost of each device. The first half's figure is printed too.
    const warmup = Math.min(MEMORY_WARMUP_DEVICES, Math.floor(s.devices / 4));
    const half = Math.floor(s.devices / 2);
    await fleet.call('start', { mode, port, from: 0, to: warmup });
    const m0 = await observed(warmup);
    await fleet.call('start', { mode, port, from: warmup, to: half });
    const m1 = await observed(half);
    await fleet.call('start', { mode, port, from: half, to: s.devices });
    const m2 = await observed(s.devices);

    await fleet.call('drive', { rate: s.rate });
    await sleep(s.warmup * 1000);
    const [start, fleet0, cpu0, t0] = [
      await stats(),
      await fleet.call<{ changes: number }>('counters'),
      connector.cpuMs(),
      process.hrtime.bigint(),
    ];
    await sleep(s.seconds * 1000);
    const [end, fleet1, cpu1] = [await stats(), await fleet.call<{ changes: number }>('counters'), connector.cpuMs()];
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    await fleet.call('halt');
    const persisted = end.readings.persisted - start.readings.persisted;
    const result: RoundResult = {
      persistedPerSecond: persisted / elapsed,
      receivedPerSecond:
        ((endpointStats(end)?.notifications ?? 0) - (endpointStats(start)?.notifications ?? 0)) / elapsed,
      offeredPerSecond: (fleet1.changes - fleet0.changes) / elapsed,
      cpuUsPerNotify: persisted > 0 ? ((cpu1 - cpu0) * 1000) / persisted : NaN,
      rssPerDevice: (m2.rss - m1.rss) / (s.devices - half),
      firstHalfRssPerDevice: (m1.rss - m0.rss) / (half - warmup),
      heapExternalPerDevice: (m2.heapUsed + m2.external - m1.heapUsed - m1.external) / (s.devices - half),
    };
    if (process.env.BENCH_VERBOSE) console.log(JSON.stringify({ mode, m0, m1, m2, start, end }));

    if (mode === 'dtls' && s.handshakes > 0) {
      await sleep(2000); // the notify window's writes settle
      const before = connector.cpuMs();
      const full0 = (await stats()).dtls?.fullHandshakes ?? 0;
      const seconds = await fleet.call<number>('handshakes', { count: s.handshakes, concurrency: s.concurrency });
      const cpuMs = connector.cpuMs() - before;
      const full = ((await stats()).dtls?.fullHandshakes ?? 0) - full0;
      result.handshakesPerSecond = full / seconds;
      result.cpuMsPerHandshake = cpuMs / full;
    }
    return result;
  } finally {
    await fleet.stop();
    await connector.stop();
  }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    devices: '2000',
    rate: '2000',
    seconds: '20',
    warmup: '5',
    runs: '3',
    handshakes: '500',
    concurrency: '16',
    'batch-ms': '100',
  });
  const s: Settings = {
    devices: Number(flags.devices),
    rate: Number(flags.rate),
    seconds: Number(flags.seconds),
    warmup: Number(flags.warmup),
    handshakes: Number(flags.handshakes),
    concurrency: Number(flags.concurrency),
    batchMs: Number(flags['batch-ms']),
  };
  const runs = Number(flags.runs);
  const cosmos = await startKeepAliveCosmos();
  const client = createCosmosClient({
    endpoint: cosmos.endpoint,
    databaseName: DATABASE,
    key: EMULATOR_KEY,
    trustedCertificatePath: cosmos.certPath,
  });
  try {
    const store = new CosmosTwinStore(await openTwinsContainer(client, DATABASE), 93);
    const now = new Date().toISOString();
    for (let i = 0; i < s.devices; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, s.devices - i) }, (_, k) =>
          store.create(newTwin(deviceName(i + k), {}, now)),
        ),
      );
    }
    console.log(
      `DTLS against plain CoAP: ${s.devices} devices, ${OBSERVED_PATHS.length} observed resources each, offered ` +
        `${s.rate} changes/s; ${runs} runs (plain round, then DTLS round) of ${s.seconds} s after ${s.warmup} s warm-up`,
    );
    const credentials = new Child('connector', CONNECTOR_NODE_FLAGS);
    const credentialBytes = await credentials.call<number>('credentialMemory', { devices: 20_000 });
    await credentials.stop();
    const results: Record<Mode, RoundResult[]> = { plain: [], dtls: [] };
    for (let run = 1; run <= runs; run++) {
      for (const mode of ['plain', 'dtls'] as const) {
        const r = await round(mode, s, cosmos);
        results[mode].push(r);
        console.log(
          `run ${run} ${mode.padEnd(5)}: offered ${r.offeredPerSecond.toFixed(0)}/s, received ` +
            `${r.receivedPerSecond.toFixed(0)}/s, persisted ${r.persistedPerSecond.toFixed(0)}/s, connector CPU ` +
            `${r.cpuUsPerNotify.toFixed(0)} µs/notify | ${kb(r.rssPerDevice)} RSS/device ` +
            `(first half ${kb(r.firstHalfRssPerDevice)}), ` +
            `${kb(r.heapExternalPerDevice)} heap+external/device` +
            (r.handshakesPerSecond === undefined
              ? ''
              : ` | ${r.handshakesPerSecond.toFixed(0)} handshakes+Register/s, ${r.cpuMsPerHandshake?.toFixed(2)} ms CPU each`),
        );
      }
    }
    const med = (mode: Mode, pick: (r: RoundResult) => number | undefined) =>
      median(results[mode].map(pick).filter((v): v is number => v !== undefined));
    const cpuRatio = med('dtls', (r) => r.cpuUsPerNotify) / med('plain', (r) => r.cpuUsPerNotify);
    const dtlsDeviceBytes = med('dtls', (r) => r.rssPerDevice);
    const sessionBytes = dtlsDeviceBytes - med('plain', (r) => r.rssPerDevice);
    console.log('');
    console.log('medians                      plain CoAP      DTLS');
    for (const [label, pick, format] of [
      ['persisted notifications/s', (r: RoundResult) => r.persistedPerSecond, (v: number) => v.toFixed(0)],
      ['connector CPU per notify', (r: RoundResult) => r.cpuUsPerNotify, (v: number) => `${v.toFixed(0)} µs`],
      ['RSS per registered device', (r: RoundResult) => r.rssPerDevice, kb],
      ['  the same, first half', (r: RoundResult) => r.firstHalfRssPerDevice, kb],
      ['heap+external per device', (r: RoundResult) => r.heapExternalPerDevice, kb],
    ] as const) {
      console.log(`  ${label.padEnd(27)} ${format(med('plain', pick)).padEnd(15)} ${format(med('dtls', pick))}`);
    }
    console.log(
      `CPU per notify, DTLS / plain:        ${cpuRatio.toFixed(2)}x  [target <= 1.5] ${cpuRatio <= 1.5 ? 'ok' : 'MISSED'}`,
    );
    console.log(
      `RSS per registered device with a DTLS session: ${kb(dtlsDeviceBytes)}  [target <= 30 KB] ` +
        `${dtlsDeviceBytes <= 30 * 1024 ? 'ok' : 'MISSED'}  (of which the session, DTLS - plain: ${kb(sessionBytes)})`,
    );
    console.log(
      `  plus, per provisioned PSK device, registered or not: ${kb(credentialBytes)} (credential and key, ` +
        `20,000 devices; held from start, so not in the figure above)`,
    );
    if (s.handshakes > 0) {
      console.log(
        `full handshakes + Register on one connector: ${med('dtls', (r) => r.handshakesPerSecond).toFixed(0)}/s at ` +
          `concurrency ${s.concurrency}, ${med('dtls', (r) => r.cpuMsPerHandshake).toFixed(2)} ms connector CPU each`,
      );
    }
  } finally {
    client.dispose();
    await cosmos.close();
  }
}

const role = process.argv[2];
if (role === 'connector') serve(connectorRole());
else if (role === 'fleet') serve(fleetRole());
else if (require.main === module) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exit(1);
    },
  );
}
