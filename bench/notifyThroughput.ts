/**
 * Notifications persisted per second by the connector, against the rate at which the bare `coap` package receives
 * the same notifications, in the same run on this machine; plus the connector's resident memory per registered
 * device.
 *
 *   npm run build && node dist/bench/notifyThroughput.js [--devices 1000] [--properties 15] [--rate 12000]
 *       [--seconds 20] [--warmup 5] [--runs 3] [--batch-ms 100] [--concurrency 4] [--profile false]
 *       [--heap-snapshot false] [--threaded true] [--fleet-processes 1]
 *
 * Each run has two phases with a fresh simulated fleet (child process) of `devices` devices, pmin 0, every readable
 * catalog resource observed (20), and `properties` of them changed at `rate` changes per second in total (each
 * device-property pair once per cycle, in a shuffled order):
 *   1. baseline: a `coap.Server` takes the registrations and a `coap.Agent` observes; it counts what it receives;
 *   2. connector: the connector (child process, wired as connector/main.ts: readings written from a worker thread;
 *      `--threaded false` writes them on the main thread) observes and writes to the local Cosmos server (this process);
 *      "persisted" is what the twin store reports as written (readings superseded by a newer value of the same
 *      property before their write are not counted). Memory (after a full GC, every observation established):
 *      a warm-up fleet registers first (enough devices to fill the write path's bounded working set: `concurrency`
 *      bulk calls of 100 devices, at most half the fleet); the connector's RSS growth while the rest register, over
 *      their number, is the memory per registered device (the growth since start, fixed costs included, is printed
 *      too). Each sample waits 5 s of quiet after the fleet is observed. RSS moves with V8's and glibc's page
 *      retention, so single runs scatter by about +-10 KB per device; the median is printed.
 * Rates are measured over `seconds` after `warmup`. Targets: >= 5,000 persisted/s, >= half the baseline rate,
 * <= 20 KB per device. `--profile true` writes a CPU profile of the connector to .local/profiles/, and
 * `--heap-snapshot true` a heap snapshot once the fleet is observed; BENCH_VERBOSE=1 prints the raw counters.
 */
import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { createCosmosClient } from '../shared/cosmosClient';
import { newTwin } from '../shared/twin';
import { createHttpsServer } from '@vercel/cosmosdb-server';
import { readFileSync } from 'node:fs';
import { AddressInfo } from 'node:net';
import { EMULATOR_KEY, ensureLocalCertificate } from '../local/cosmosServer';
import { parseFlags } from '../local/flags';
import { MAX_DEVICES_PER_CALL } from '../connector/readingsWriter';
import { ConnectorStats } from '../connector/startConnector';
import { median, processCpuMs } from './stats';
import { MemorySample, OBSERVED_PATHS, WorkerReply, WorkerRequest } from './notifyThroughputWorker';

const ROOT = path.resolve(__dirname, '..', '..');
/** Quiet time before a memory sample, so the garbage of the registration burst is collected and released. */
const MEMORY_SETTLE_MS = 5000;
/** The connector's Node flags, as connector/Dockerfile runs it (smaller heap growth: less RSS per device). */
export const CONNECTOR_NODE_FLAGS = ['--optimize-for-size'];
const DATABASE = 'bench-notify';
export const PREFIX = 'bench-';
const NO_MEMORY_SAMPLE: MemorySample = { rss: NaN, heapUsed: NaN, heapTotal: NaN, external: NaN };

/** A worker process (bench/notifyThroughputWorker.ts) in one role, called over IPC. */
export class Worker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly child: ChildProcess;

  /** `script`: the worker to fork (another checkout's build, for a before/after comparison); default this one's. */
  constructor(
    readonly role: string,
    execArgv: string[] = [],
    script = path.join(__dirname, 'notifyThroughputWorker.js'),
  ) {
    this.child = fork(script, [role], {
      execArgv: ['--expose-gc', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply: WorkerReply) => {
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

  /** Runs a command in the worker; fails after `timeoutMs` (a fleet that cannot register must not hang the run). */
  call<T>(command: string, args?: Record<string, unknown>, timeoutMs = 300_000): Promise<T> {
    const id = ++this.nextId;
    const request: WorkerRequest = { id, command, args };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.role}: ${command} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send(request);
    });
  }

  /** CPU time the worker process has used so far (all threads), ms; undefined where /proc is missing. */
  cpuMs(): number | undefined {
    return this.child.pid === undefined ? undefined : processCpuMs(this.child.pid);
  }

  async stop(): Promise<void> {
    await this.call('stop', {}, 60_000).catch(() => undefined);
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    await exited;
  }
}

/**
 * Devices are numbered from a power of ten above the count (1000 devices: 10000-10999), so every endpoint name has
 * the same width whichever fleet starts it (the simulator pads numbers to the widest one in its fleet).
 */
export function firstDeviceNumber(devices: number): number {
  return 10 ** String(devices).length;
}

/** The simulated fleet, split over `processes` child processes (more load than one process can generate). */
class FleetGroup {
  private readonly workers: Worker[];

  constructor(
    processes: number,
    private readonly registrationsPerSecond?: number,
  ) {
    this.workers = Array.from({ length: processes }, () => new Worker('fleet'));
  }

  /** Starts `count` devices numbered from `startIndex`, split evenly; resolves when all are registered. */
  async start(count: number, startIndex: number, serverPort: number): Promise<void> {
    const per = Math.ceil(count / this.workers.length);
    await Promise.all(
      this.workers.map((worker, i) => {
        const share = Math.min(per, count - i * per);
        return share > 0
          ? worker.call('start', {
              count: share,
              prefix: PREFIX,
              serverPort,
              startIndex: startIndex + i * per,
              registrationsPerSecond: this.registrationsPerSecond && this.registrationsPerSecond / this.workers.length,
            })
          : undefined;
      }),
    );
  }

  async drive(rate: number, properties: number): Promise<void> {
    await Promise.all(this.workers.map((w) => w.call('drive', { rate: rate / this.workers.length, properties })));
  }

  async counters(): Promise<{ changes: number; notificationsSent: number }> {
    const all = await Promise.all(
      this.workers.map((w) => w.call<{ changes: number; notificationsSent: number }>('counters')),
    );
    return all.reduce((a, b) => ({
      changes: a.changes + b.changes,
      notificationsSent: a.notificationsSent + b.notificationsSent,
    }));
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Counter rate over the window: samples the counter at the start and the end. */
async function rateOver(seconds: number, counter: () => Promise<number>): Promise<number> {
  const c0 = await counter();
  const t0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const c1 = await counter();
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  return (c1 - c0) / elapsed;
}

export interface Settings {
  devices: number;
  properties: number;
  rate: number;
  seconds: number;
  warmup: number;
  batchMs: number;
  concurrency: number;
  profile: boolean;
  heapSnapshot: boolean;
  threaded: boolean;
  fleetProcesses: number;
  /** Registers per second of the whole simulated fleet (default 500). */
  registrationsPerSecond?: number;
}

async function baselinePhase(s: Settings): Promise<number> {
  const baseline = new Worker('baseline');
  const fleet = new FleetGroup(s.fleetProcesses);
  try {
    const { coapPort } = await baseline.call<{ coapPort: number }>('start');
    await fleet.start(s.devices, firstDeviceNumber(s.devices), coapPort);
    const expected = s.devices * OBSERVED_PATHS.length;
    await waitFor('baseline observations', 120_000, async () => {
      const stats = await baseline.call<{ observations: number }>('stats');
      return stats.observations >= expected;
    });
    await fleet.drive(s.rate, s.properties);
    await sleep(s.warmup * 1000);
    return await rateOver(s.seconds, async () => (await baseline.call<{ received: number }>('stats')).received);
  } finally {
    await fleet.stop();
    await baseline.stop();
  }
}

export interface ConnectorResult {
  persisted: number;
  received: number;
  offered: number;
  sent: number;
  /** Marginal resident memory per device: (RSS with all devices - RSS with the warm-up fleet) / main fleet size. */
  bytesPerDevice: number;
  /** RSS with all devices - RSS before any registration, over all devices (fixed costs included). */
  bytesPerDeviceOverall: number;
  heapPerDevice: number;
  readingsPerDeviceWrite: number;
  devicesPerCall: number;
  storeRequestsPerSecond: number;
  /** Observations the connector held during the measurement, of `expectedObservations` (every resource observed). */
  observations: number;
  expectedObservations: number;
  /** The connector process's CPU time (all threads, Linux) per 1,000 persisted notifications, ms; NaN elsewhere. */
  cpuMsPerThousand: number;
  /** This process's CPU time per 1,000 persisted notifications, ms: the local Cosmos server's, where it runs here. */
  ownCpuMsPerThousand: number;
}

/** How `connectorPhase` runs the connector (defaults: as this benchmark's own runs do). */
export interface ConnectorPhaseOptions {
  /** The connector worker to fork (another checkout's `dist/bench/notifyThroughputWorker.js`); default this one's. */
  workerScript?: string;
  /**
   * Whether to sample memory (warm-up fleet, then the rest, 5 s of quiet before each sample); default true. Without
   * it the whole fleet registers at once and the memory figures are NaN.
   */
  measureMemory?: boolean;
  /** Extra arguments for the worker's `start` (a worker ignores those it does not know). */
  startArgs?: Record<string, unknown>;
  /**
   * Go on once the connector's observation count has not grown for this long (ms), even short of every resource of
   * the fleet (an observe that failed is not retried before the device's next Update); default: wait for all.
   */
  observationsQuietMs?: number;
}

export async function connectorPhase(
  s: Settings,
  cosmos: { endpoint: string; certPath: string },
  run: number,
  options: ConnectorPhaseOptions = {},
): Promise<ConnectorResult> {
  const measureMemory = options.measureMemory ?? true;
  const profileArgs = s.profile
    ? [
        '--cpu-prof',
        `--cpu-prof-dir=${path.join(ROOT, '.local', 'profiles')}`,
        `--cpu-prof-name=connector-run${run}.cpuprofile`,
      ]
    : [];
  const connector = new Worker('connector', [...CONNECTOR_NODE_FLAGS, ...profileArgs], options.workerScript);
  const fleet = new FleetGroup(s.fleetProcesses, s.registrationsPerSecond);
  try {
    const { coapPort } = await connector.call<{ coapPort: number }>('start', {
      cosmosEndpoint: cosmos.endpoint,
      cosmosKey: EMULATOR_KEY,
      certPath: cosmos.certPath,
      database: DATABASE,
      batchMs: s.batchMs,
      concurrency: s.concurrency,
      threaded: s.threaded,
      ...options.startArgs,
    });
    const stats = () => connector.call<ConnectorStats>('stats');
    const observedFleet = async (devices: number) => {
      let last = -1;
      let lastGrowth = Date.now();
      await waitFor('connector observations', 180_000, async () => {
        const current = await stats();
        if (current.observations !== last) [last, lastGrowth] = [current.observations, Date.now()];
        const stalled =
          options.observationsQuietMs !== undefined && Date.now() - lastGrowth >= options.observationsQuietMs;
        return (current.observations >= devices * OBSERVED_PATHS.length || stalled) && current.pendingReadings === 0;
      });
      if (!measureMemory) return NO_MEMORY_SAMPLE;
      await sleep(MEMORY_SETTLE_MS);
      return connector.call<MemorySample>('memory');
    };
    const m0 = measureMemory ? await connector.call<MemorySample>('memory') : NO_MEMORY_SAMPLE;
    // A warm-up fleet first, so what does not grow with the fleet is in place before the slope is measured: JIT
    // code, buffer pools, and the write path's working set (up to `concurrency` bulk calls of 100 devices each).
    const warmup = measureMemory
      ? Math.max(10, Math.min(Math.floor(s.devices / 2), s.concurrency * MAX_DEVICES_PER_CALL))
      : 0;
    const first = firstDeviceNumber(s.devices);
    if (warmup > 0) await fleet.start(warmup, first, coapPort);
    const m1 = await observedFleet(warmup);
    await fleet.start(s.devices - warmup, first + warmup, coapPort);
    const m2 = await observedFleet(s.devices);
    if (s.heapSnapshot) {
      const file = path.join(ROOT, '.local', 'profiles', `connector-run${run}.heapsnapshot`);
      console.log(`heap snapshot: ${await connector.call<string>('heapSnapshot', { path: file })}`);
    }
    await fleet.drive(s.rate, s.properties);
    await sleep(s.warmup * 1000);
    const start = await stats();
    const startFleet = await fleet.counters();
    const cpu0 = connector.cpuMs();
    const ownCpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await sleep(s.seconds * 1000);
    const end = await stats();
    const cpu1 = connector.cpuMs();
    const ownCpu = process.cpuUsage(ownCpu0);
    const endFleet = await fleet.counters();
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    if (process.env.BENCH_VERBOSE) {
      console.log(JSON.stringify({ memory: { m0, m1, m2 }, start: start.coap, end: end.coap, readings: end.readings }));
    }
    const persisted = end.readings.persisted - start.readings.persisted;
    const deviceWrites = end.readings.deviceWrites - start.readings.deviceWrites;
    const calls = end.readings.writes - start.readings.writes;
    return {
      persisted: persisted / elapsed,
      received: (end.coap!.notifications - start.coap!.notifications) / elapsed,
      offered: (endFleet.changes - startFleet.changes) / elapsed,
      sent: (endFleet.notificationsSent - startFleet.notificationsSent) / elapsed,
      bytesPerDevice: (m2.rss - m1.rss) / (s.devices - warmup),
      bytesPerDeviceOverall: (m2.rss - m0.rss) / s.devices,
      heapPerDevice: (m2.heapUsed - m1.heapUsed) / (s.devices - warmup),
      readingsPerDeviceWrite: deviceWrites > 0 ? persisted / deviceWrites : 0,
      devicesPerCall: calls > 0 ? deviceWrites / calls : 0,
      storeRequestsPerSecond: (end.readings.storeRequests - start.readings.storeRequests) / elapsed,
      observations: end.observations,
      ownCpuMsPerThousand: persisted > 0 ? (ownCpu.user + ownCpu.system) / persisted : NaN,
      cpuMsPerThousand:
        cpu0 !== undefined && cpu1 !== undefined && persisted > 0 ? ((cpu1 - cpu0) * 1000) / persisted : NaN,
      expectedObservations: s.devices * OBSERVED_PATHS.length,
    };
  } finally {
    await fleet.stop();
    await connector.stop();
  }
}

/**
 * The local Cosmos server with HTTP keep-alive. local/cosmosServer.ts starts it without, and the package then
 * answers every request with `connection: close`, so each Cosmos request pays a TCP + TLS handshake (RSA-2048):
 * that, not the connector, would be what this benchmark measures. Real Cosmos DB keeps connections open.
 */
export async function startKeepAliveCosmos(): Promise<{ endpoint: string; certPath: string; close(): Promise<void> }> {
  const certificate = ensureLocalCertificate(path.join(ROOT, '.local', 'certs'));
  const server = createHttpsServer({
    cert: readFileSync(certificate.certPath),
    key: readFileSync(certificate.keyPath),
    keepAlive: true,
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    endpoint: `https://localhost:${(server.address() as AddressInfo).port}`,
    certPath: certificate.certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The provisioned twins of a fleet of `devices` (never connected), as `connectorPhase` starts it. */
export async function seedTwins(store: CosmosTwinStore, devices: number): Promise<void> {
  const now = new Date().toISOString();
  for (let i = 0; i < devices; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, devices - i) }, (_, k) =>
        store.create(newTwin(`${PREFIX}${firstDeviceNumber(devices) + i + k}`, {}, now)),
      ),
    );
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    devices: '1000',
    properties: '15',
    rate: '12000',
    seconds: '20',
    warmup: '5',
    runs: '3',
    'batch-ms': '100',
    concurrency: '4',
    profile: 'false',
    'heap-snapshot': 'false',
    threaded: 'true',
    'fleet-processes': '1',
  });
  const s: Settings = {
    devices: Number(flags.devices),
    properties: Number(flags.properties),
    rate: Number(flags.rate),
    seconds: Number(flags.seconds),
    warmup: Number(flags.warmup),
    batchMs: Number(flags['batch-ms']),
    concurrency: Number(flags.concurrency),
    profile: flags.profile === 'true',
    heapSnapshot: flags['heap-snapshot'] === 'true',
    threaded: flags.threaded !== 'false',
    fleetProcesses: Number(flags['fleet-processes']),
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
    await seedTwins(new CosmosTwinStore(await openTwinsContainer(client, DATABASE), 93), s.devices);
    console.log(
      `notify throughput: ${s.devices} devices, ${OBSERVED_PATHS.length} observed resources each, ${s.properties} ` +
        `changing, offered ${s.rate} changes/s, pmin 0; ${runs} runs of ${s.seconds} s after ${s.warmup} s warm-up`,
    );
    const baselines: number[] = [];
    const results: ConnectorResult[] = [];
    for (let run = 1; run <= runs; run++) {
      const raw = await baselinePhase(s);
      baselines.push(raw);
      const result = await connectorPhase(s, cosmos, run);
      results.push(result);
      console.log(
        `run ${run}: coap package received ${raw.toFixed(0)}/s | connector: offered ${result.offered.toFixed(0)}/s, ` +
          `simulator sent ${result.sent.toFixed(0)}/s, received ${result.received.toFixed(0)}/s, ` +
          `persisted ${result.persisted.toFixed(0)}/s (${result.readingsPerDeviceWrite.toFixed(1)} readings/device write, ` +
          `${result.devicesPerCall.toFixed(1)} devices/store call, ${result.storeRequestsPerSecond.toFixed(0)} Cosmos requests/s) | ` +
          `${(result.bytesPerDevice / 1024).toFixed(1)} KB RSS/device marginal, ` +
          `${(result.bytesPerDeviceOverall / 1024).toFixed(1)} KB overall, ${(result.heapPerDevice / 1024).toFixed(1)} KB heap`,
      );
    }
    const raw = median(baselines);
    const persisted = median(results.map((r) => r.persisted));
    const perDevice = median(results.map((r) => r.bytesPerDevice)) / 1024;
    const perDeviceOverall = median(results.map((r) => r.bytesPerDeviceOverall)) / 1024;
    const ratio = persisted / raw;
    console.log('');
    console.log(`median raw receive rate (coap package):  ${raw.toFixed(0)} notifications/s`);
    console.log(
      `median persisted rate (connector):       ${persisted.toFixed(0)} notifications/s  [target >= 5000] ${persisted >= 5000 ? 'ok' : 'MISSED'}`,
    );
    console.log(
      `ratio persisted / raw:                   ${ratio.toFixed(2)}  [target >= 0.5] ${ratio >= 0.5 ? 'ok' : 'MISSED'}`,
    );
    console.log(
      `resident memory per registered device:   ${perDevice.toFixed(1)} KB marginal  [target <= 20] ${perDevice <= 20 ? 'ok' : 'MISSED'}`,
    );
    console.log(`  (all RSS growth since start / devices:  ${perDeviceOverall.toFixed(1)} KB, fixed costs included)`);
  } finally {
    client.dispose();
    await cosmos.close();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
