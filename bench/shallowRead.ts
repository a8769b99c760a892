/**
 * Shallow reads through the Functions host (GET /api/twins/{id}: HTTP -> @azure/functions -> Cosmos point read)
 * versus direct SDK point reads against the same local Cosmos server, in the same run, at concurrency 16.
 *
 *   npm run build && node dist/bench/shallowRead.js [--requests 3000] [--rounds 5] [--warmup 3000]
 *                                                   [--cpu-prof-dir <dir>]
 *
 * Fair and stable: both paths get the same warm-up (JIT, connection pools, the host's lazy clients); rounds
 * interleave the paths and alternate which one goes first, so drift on a shared machine hits both alike; both
 * clients keep connections alive with Node's defaults (TCP_NODELAY on), and both Cosmos clients come from
 * createCosmosClient. The load average is printed because the machine may be shared.
 *
 * CPU per request of each process (Linux) explains the ratio: at concurrency 16 each path is bound by one busy event
 * loop, the bench's SDK client for direct reads and the host for the function path, so a median is roughly
 * 16 x that process's CPU per request. `--cpu-prof-dir` writes V8 CPU profiles of the Cosmos server and the host.
 *
 * A third path measures the floor of any HTTP shallow read on this machine: a bare `node:http` server in its own
 * process doing the same SDK point read (bench/bareReadServer.ts), without the Functions library or any of the app's
 * checks. What the function path costs beyond it is the host and the library; what the floor costs beyond the direct
 * read is the extra loopback HTTP hop and a second event loop. A fourth path serves the same route from a second host
 * process whose one function answers a fixed twin without I/O (bench/emptyFunctionApp.ts): the host's and the
 * library's own cost per request.
 *
 * Target: the function path's median costs at most 1.5x a direct point read.
 */
import { ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createCosmosClient } from '../shared/cosmosClient';
import { openTwinsContainer } from '../shared/cosmosTwinStore';
import { loadCosmosConfig } from '../shared/config';
import { parseFlags } from '../local/flags';
import { freePorts, PieceName, startLocalStack, workerArguments } from '../local/localStack';
import { fmt, measureConcurrent, median, percentile, processCpuMs } from './stats';

const CONCURRENCY = 16;
const DEVICES = 100;
/** The processes whose CPU time is accounted per request. */
const ACCOUNTED: readonly PieceName[] = ['cosmos', 'functions'];
/** Processes whose CPU is read: the stack's pieces, the bare server and the fixed-twin host. */
type Accounted = PieceName | 'bare' | 'fixedHost';

interface BenchPath {
  name: string;
  /** Short name in the CPU line. */
  label: string;
  /** Processes that work for this path (the bench itself always does). */
  accounted: readonly Accounted[];
  run: (i: number) => Promise<void>;
  samples: number[];
  roundMedians: number[];
  seconds: number;
  /** CPU ms spent by each process during this path's rounds. */
  cpuMs: Map<string, number>;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    requests: '3000',
    rounds: '5',
    warmup: '3000',
    'cpu-prof-dir': '',
  });
  const requests = positiveInteger(flags.requests, 'requests');
  const rounds = positiveInteger(flags.rounds, 'rounds');
  const warmup = positiveInteger(flags.warmup, 'warmup');
  const profileDir = flags['cpu-prof-dir'] ? path.resolve(flags['cpu-prof-dir']) : undefined;
  const root = path.resolve(__dirname, '..', '..');
  const [cosmos, blob, queue, table, serviceBus, functions, coap, connectorApi, barePort, fixedPort] =
    await freePorts(10);
  const pids = new Map<Accounted, number>();
  const stack = await startLocalStack({
    root,
    ports: { cosmos, blob, queue, table, serviceBus, functions, coap, connectorApi },
    dataDir: path.join(root, '.local', 'bench-stack'),
    output: 'files',
    quietInvocations: true,
    pieces: ['cosmos', 'azurite', 'serviceBus', 'functions'],
    log: () => undefined,
    nodeFlags: profileDir
      ? Object.fromEntries(
          ACCOUNTED.map((piece) => [
            piece,
            ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${piece}.cpuprofile`],
          ]),
        )
      : undefined,
    onSpawn: (piece, child) => {
      if (child.pid !== undefined) pids.set(piece, child.pid);
    },
  });
  const cleanups: (() => Promise<void>)[] = [];
  const bare = spawn(process.execPath, [path.join(__dirname, 'bareReadServer.js'), String(barePort)], {
    env: { ...process.env, ...stack.settings },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    if (bare.pid !== undefined) pids.set('bare', bare.pid);
    await untilOutput(bare, 'ready', 'the bare read server');
    const ids = Array.from({ length: DEVICES }, (_, i) => `bench-${i}`);
    for (const id of ids) {
      const response = await fetch(`${stack.apiBaseUrl}/devices/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ security: { mode: 'none' } }),
      });
      if (response.status >= 300) throw new Error(`provisioning ${id}: ${response.status}`);
    }
    const fixedHost = await startFixedTwinHost(
      root,
      fixedPort,
      stack.settings,
      await (await fetch(`${stack.apiBaseUrl}/twins/${ids[0]}`)).text(),
    );
    cleanups.push(fixedHost.stop);
    pids.set('fixedHost', fixedHost.pid);
    const config = loadCosmosConfig(stack.settings);
    const client = createCosmosClient(config);
    const container = await openTwinsContainer(client, config.databaseName);
    // A keep-alive HTTP/1.1 client, as lean as the SDK's own transport is for the baseline.
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

    const direct: BenchPath = {
      ...emptyPath('baseline: direct SDK point read', 'direct'),
      accounted: ['cosmos'],
      run: async (i) => {
        const id = ids[i % DEVICES];
        const { resource } = await container.item(id, id).read();
        if (!resource) throw new Error(`direct read of ${id} found nothing`);
      },
    };
    const get = (url: string) =>
      new Promise<void>((resolve, reject) => {
        const request = http.get(url, { agent }, (response) => {
          if (response.statusCode !== 200) reject(new Error(`GET ${url}: ${response.statusCode}`));
          response.on('data', () => undefined);
          response.on('end', () => resolve());
        });
        request.on('error', reject);
      });
    const viaFunction: BenchPath = {
      ...emptyPath('GET /api/twins/{id} via the host', 'function'),
      accounted: ['functions', 'cosmos'],
      run: (i) => get(`${stack.apiBaseUrl}/twins/${ids[i % DEVICES]}`),
    };
    const floor: BenchPath = {
      ...emptyPath('floor: bare node:http + point read', 'floor'),
      accounted: ['bare', 'cosmos'],
      run: (i) => get(`http://127.0.0.1:${barePort}/twins/${ids[i % DEVICES]}`),
    };
    const fixed: BenchPath = {
      ...emptyPath('host, function without I/O', 'fixed'),
      accounted: ['fixedHost'],
      run: (i) => get(`http://127.0.0.1:${fixedPort}/api/twins/${ids[i % DEVICES]}`),
    };
    const paths = [direct, viaFunction, floor, fixed];

    const loadAtStart = os.loadavg()[0];
    // Warm-up: JIT (the host runs far more code than the bench), connection pools, the host's lazy clients.
    for (const benchPath of [...paths, ...paths]) {
      await measureConcurrent(Math.ceil(warmup / 2), CONCURRENCY, benchPath.run);
    }
    // Each round starts with another path, so drift on a shared machine hits them alike.
    for (let round = 0; round < rounds; round++) {
      const order = [...paths.slice(round % paths.length), ...paths.slice(0, round % paths.length)];
      for (const benchPath of order) await measureRound(benchPath, requests, pids);
    }
    const loadAtEnd = os.loadavg()[0];
    client.dispose();
    agent.destroy();

    console.log(
      `Shallow reads, concurrency ${CONCURRENCY}, ${rounds} x ${requests} requests per path after ${warmup} ` +
        `warm-up each, ${DEVICES} twins; load average (1 min) ${loadAtStart.toFixed(2)} at start, ` +
        `${loadAtEnd.toFixed(2)} at end, ${os.availableParallelism()} CPUs`,
    );
    for (const benchPath of paths) console.log(describeLatency(benchPath));
    console.log(`CPU ms per request: ${paths.map(describeCpu).join('   ')}`);
    // Per round, each path's median against the baseline's in the same round; the median of those ratios is what a
    // burst of noise in one round cannot swing (pooled medians can, when the burst hits one path's round only).
    const roundRatios = (a: BenchPath, b: BenchPath) => a.roundMedians.map((ms, round) => ms / b.roundMedians[round]);
    const ratios = (a: BenchPath, b: BenchPath) =>
      `median ${median(roundRatios(a, b)).toFixed(2)}x (rounds ${roundRatios(a, b)
        .map((r) => r.toFixed(2))
        .join(' ')}), p99 ${(percentile(a.samples, 99) / percentile(b.samples, 99)).toFixed(2)}x`;
    const ratio = median(roundRatios(viaFunction, direct));
    console.log(
      `ratio (function / direct): ${ratios(viaFunction, direct)}   target <= 1.5x median: ${ratio <= 1.5 ? 'met' : 'NOT met'}`,
    );
    console.log(`ratio (floor / direct): ${ratios(floor, direct)}   (an HTTP hop and a second process, nothing else)`);
    console.log(`ratio (function / floor): ${ratios(viaFunction, floor)}   (the host, the library and the app)`);
    const cpuPerRequest = (benchPath: BenchPath, name: string) =>
      (benchPath.cpuMs.get(name) ?? Number.NaN) / benchPath.samples.length;
    const fixedCost = cpuPerRequest(fixed, 'fixedHost');
    console.log(
      `host + library without I/O: ${fixedCost.toFixed(3)} ms CPU per request, ` +
        `${(fixedCost / cpuPerRequest(direct, 'bench')).toFixed(2)}x the CPU of one direct point read`,
    );
    if (profileDir) console.log(`CPU profiles of ${ACCOUNTED.join(', ')} in ${profileDir}`);
  } finally {
    for (const cleanup of cleanups) await cleanup();
    bare.kill('SIGTERM');
    await stack.stop();
  }
}

/** A second local host on `port` serving bench/emptyFunctionApp.ts, with the worker flags the stack's host gets. */
async function startFixedTwinHost(root: string, port: number, settings: Record<string, string>, twinJson: string) {
  const appRoot = mkdtempSync(path.join(os.tmpdir(), 'fixed-twin-app-'));
  writeFileSync(path.join(appRoot, 'host.json'), JSON.stringify({ version: '2.0' }));
  writeFileSync(path.join(appRoot, 'package.json'), JSON.stringify({ name: 'fixed-twin-app', main: 'index.js' }));
  writeFileSync(
    path.join(appRoot, 'index.js'),
    `require(${JSON.stringify(path.join(root, 'dist', 'bench', 'emptyFunctionApp.js'))});\n`,
  );
  const flags = workerArguments(settings);
  const host = path.join(root, 'dist', 'local', 'functionsHost', 'main.js');
  const child = spawn(
    process.execPath,
    [...flags, host, '--app-root', appRoot, '--port', String(port), '--quiet-invocations'],
    { env: { ...process.env, ...settings, BENCH_FIXED_BODY: twinJson }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(appRoot, { recursive: true, force: true });
  };
  try {
    await untilOutput(child, 'listening', 'the fixed-twin host');
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid as number, stop };
}

/** Resolves when the child prints `text` on stdout; rejects when it exits first or after 30 s. */
function untilOutput(child: ChildProcessByStdio<null, Readable, null>, text: string, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s`)), 30_000);
    const onExit = () => reject(new Error(`${what} exited while starting`));
    child.once('exit', onExit);
    child.stdout.on('data', (chunk: Buffer) => {
      if (!chunk.toString().includes(text)) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve();
    });
  });
}

function emptyPath(name: string, label: string): Omit<BenchPath, 'run' | 'accounted'> {
  return { name, label, samples: [], roundMedians: [], seconds: 0, cpuMs: new Map() };
}

/** One round of `requests` calls, adding latencies and each accounted process's CPU time to the path. */
async function measureRound(benchPath: BenchPath, requests: number, pids: ReadonlyMap<Accounted, number>) {
  const cpuOf = (piece: Accounted) => {
    const pid = pids.get(piece);
    return pid === undefined ? undefined : processCpuMs(pid);
  };
  const before = new Map(benchPath.accounted.map((piece) => [piece, cpuOf(piece)]));
  const benchBefore = process.cpuUsage();
  const { latencies, seconds } = await measureConcurrent(requests, CONCURRENCY, benchPath.run);
  const benchUsed = process.cpuUsage(benchBefore);
  benchPath.samples.push(...latencies);
  benchPath.roundMedians.push(median(latencies));
  benchPath.seconds += seconds;
  const add = (name: string, ms: number) => benchPath.cpuMs.set(name, (benchPath.cpuMs.get(name) ?? 0) + ms);
  add('bench', (benchUsed.user + benchUsed.system) / 1000);
  for (const piece of benchPath.accounted) {
    const start = before.get(piece);
    const end = cpuOf(piece);
    if (start !== undefined && end !== undefined) add(piece === 'functions' ? 'host' : piece, end - start);
  }
}

function describeLatency(benchPath: BenchPath): string {
  return (
    `${benchPath.name.padEnd(34)} median ${fmt(median(benchPath.samples)).padStart(9)}` +
    `   p99 ${fmt(percentile(benchPath.samples, 99)).padStart(9)}` +
    `   ${(benchPath.samples.length / benchPath.seconds).toFixed(0).padStart(5)} req/s` +
    `   round medians ${benchPath.roundMedians.map((ms) => ms.toFixed(2)).join(' ')}`
  );
}

function describeCpu(benchPath: BenchPath): string {
  const perRequest = [...benchPath.cpuMs].map(([name, ms]) => `${name} ${(ms / benchPath.samples.length).toFixed(3)}`);
  return `${benchPath.label}: ${perRequest.join(', ')}`;
}

function positiveInteger(text: string, name: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got "${text}"`);
  return value;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
