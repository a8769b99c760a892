/**
 * Child processes of bench/notifyThroughput.ts, one role each (argv[2]), driven over IPC:
 *
 * - `fleet`: the simulated fleet (load generator). pmin 0 for every observation; on `drive` it changes the chosen
 *   properties of every device at a steady total rate, so each change is one notification.
 * - `connector`: the connector, writing to the local Cosmos server the orchestrator runs.
 * - `baseline`: the bare `coap` package: a `coap.Server` that accepts registrations and a `coap.Agent` that observes
 *   the same resources the connector observes, counting the notifications it receives (no persistence).
 *
 * Each replies to `{ id, command }` with `{ id, result }` (or `{ id, error }`).
 */
import * as coap from 'coap';
import { writeHeapSnapshot } from 'node:v8';
import { DEFAULT_OBSERVATION, PropertyValue, TWIN_PROPERTIES } from '../shared/catalog';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { Logger } from '../connector/logger';
import { CosmosRegistrationStore, openRegistrationsContainer } from '../connector/registration/cosmosRegistrationStore';
import { RunningConnector, startConnector } from '../connector/startConnector';
import { ThreadedReadingsSink } from '../connector/threadedReadingsSink';
import { SimulatedFleet, startSimulatedFleet } from '../simulator';

export interface WorkerRequest {
  id: number;
  command: string;
  args?: Record<string, unknown>;
}

export interface WorkerReply {
  id: number;
  result?: unknown;
  error?: string;
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

/** Properties the fleet changes during the measurement (15 of the 20 readable ones), with value makers. */
export const CHANGING_PROPERTIES: readonly { path: string; value: (n: number) => PropertyValue }[] = [
  { path: '/3/0/0', value: (n) => `maker-${n}` },
  { path: '/3/0/1', value: (n) => `model-${n}` },
  { path: '/3/0/2', value: (n) => `serial-${n}` },
  { path: '/3/0/3', value: (n) => `fw-${n}` },
  { path: '/3/0/9', value: (n) => n % 101 },
  { path: '/3/0/10', value: (n) => 1000 + (n % 5000) },
  { path: '/3/0/13', value: (n) => 1_700_000_000 + n },
  { path: '/3/0/14', value: (n) => (n % 2 ? '+01:00' : '-05:00') },
  { path: '/3/0/15', value: (n) => (n % 2 ? 'Europe/Paris' : 'Asia/Tokyo') },
  { path: '/3/0/17', value: (n) => `type-${n}` },
  { path: '/3/0/18', value: (n) => `hw-${n}` },
  { path: '/3/0/20', value: (n) => n % 7 },
  { path: '/3/0/21', value: (n) => 8000 + (n % 100) },
  { path: '/5/0/6', value: (n) => `package-${n}` },
  { path: '/5/0/7', value: (n) => `v${n}` },
];

/** The resources both receivers observe: every readable catalog resource (20). */
export const OBSERVED_PATHS: readonly string[] = TWIN_PROPERTIES.map((e) => e.path);

function memory(): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
  const usage = process.memoryUsage();
  return { rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external };
}

const quietLogger: Logger = {
  info: () => undefined,
  warn: (message, fields) => process.stderr.write(`[connector warn] ${message} ${JSON.stringify(fields ?? {})}\n`),
  error: (message, fields) => process.stderr.write(`[connector error] ${message} ${JSON.stringify(fields ?? {})}\n`),
};

type Handler = (args: Record<string, unknown>) => Promise<unknown> | unknown;

// ---- fleet ----

function fleetRole(): Record<string, Handler> {
  const fleets: SimulatedFleet[] = [];
  let driver: NodeJS.Timeout | undefined;
  let changes = 0;
  return {
    /** Starts (another) fleet of `count` devices numbered from `startIndex`; resolves when all are registered. */
    start: async (args) => {
      const fleet = await startSimulatedFleet({
        count: args.count as number,
        prefix: args.prefix as string,
        startIndex: (args.startIndex as number | undefined) ?? 1,
        server: { host: '127.0.0.1', port: args.serverPort as number },
        lifetime: 3600,
        pmin: 0,
        pmax: 3600,
        changeIntervalMs: 0,
        registrationsPerSecond: (args.registrationsPerSecond as number | undefined) ?? 500,
      });
      fleets.push(fleet);
      await fleet.allRegistered();
      return { devices: fleet.devices.length };
    },
    /**
     * Changes `properties` properties of every device, `rate` changes per second in total, in 10 ms slices. Every
     * (device, property) pair changes once per cycle, in a shuffled order, so a device's changes spread over time.
     */
    drive: (args) => {
      const devices = fleets.flatMap((fleet) => fleet.devices);
      const properties = CHANGING_PROPERTIES.slice(0, args.properties as number);
      const order = shuffled(devices.length * properties.length);
      const rate = args.rate as number;
      const sliceMs = 10;
      const perSlice = (rate * sliceMs) / 1000;
      let budget = 0;
      let cursor = 0;
      const started = Date.now();
      let slices = 0;
      const slice = () => {
        slices++;
        budget += perSlice;
        while (budget >= 1) {
          const pair = order[cursor % order.length];
          const property = properties[pair % properties.length];
          devices[Math.floor(pair / properties.length)].setValue(property.path, property.value(changes));
          cursor++;
          changes++;
          budget--;
        }
        driver = setTimeout(slice, Math.max(0, started + (slices + 1) * sliceMs - Date.now()));
      };
      driver = setTimeout(slice, sliceMs);
      return { driving: true };
    },
    counters: () => {
      const sent = fleets.reduce((sum, fleet) => sum + fleet.counters().notificationsSent, 0);
      return { changes, notificationsSent: sent };
    },
    stop: async () => {
      if (driver) clearTimeout(driver);
      for (const fleet of fleets) await fleet.stop({ deregister: false });
      return { stopped: true };
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

// ---- connector ----

function connectorRole(): Record<string, Handler> {
  let connector: RunningConnector | undefined;
  let dispose: (() => Promise<void>) | undefined;
  return {
    /**
     * Wired as connector/main.ts wires it: an in-process store, readings written from a worker thread; with
     * `registrations: true` registrations kept in the database's `registrations` container (else in memory), loaded
     * at start for `instanceId` (default 'bench'). Returns the CoAP port, how long `startConnector` took (ms), and
     * the memory right before it (after a full GC).
     */
    start: async (args) => {
      const cosmos = {
        endpoint: args.cosmosEndpoint as string,
        databaseName: args.database as string,
        key: args.cosmosKey as string,
        trustedCertificatePath: args.certPath as string,
      };
      const client = createCosmosClient(cosmos);
      const store = new CosmosTwinStore(await openTwinsContainer(client, cosmos.databaseName), 93);
      const readingsSink = args.threaded
        ? await ThreadedReadingsSink.start({ cosmos, graceSeconds: 93, observation: DEFAULT_OBSERVATION })
        : undefined;
      const registrations = args.registrations
        ? new CosmosRegistrationStore(await openRegistrationsContainer(client, cosmos.databaseName))
        : undefined;
      dispose = async () => {
        await readingsSink?.close();
        client.dispose();
      };
      const pmax = 3600;
      const memoryBeforeStart = memory();
      const startedAt = process.hrtime.bigint();
      connector = await startConnector({
        store,
        registrations,
        readingsSink,
        log: quietLogger,
        config: {
          instanceId: (args.instanceId as string | undefined) ?? 'bench',
          coapPort: 0,
          coapAddress: '127.0.0.1',
          apiPort: 0,
          apiAddress: '127.0.0.1',
          apiUrl: 'http://127.0.0.1:0',
          apiKey: 'bench',
          deviceTimeoutSeconds: 30,
          observation: {
            device: { pmin: 0, pmax },
            server: { pmin: 0, pmax },
            firmwareUpdate: { pmin: 0, pmax },
          },
          stalenessGraceSeconds: 93,
          notifyBatchMs: args.batchMs as number,
          maxConcurrentTwinWrites: args.concurrency as number,
          expirySweepMs: 1000,
        },
      });
      const startMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
      return { coapPort: connector.coapPort, startMs, memoryBeforeStart };
    },
    stats: () => connector?.stats(),
    memory: () => memory(),
    /** Writes a V8 heap snapshot (for finding what memory per device is made of); returns its path. */
    heapSnapshot: (args) => writeHeapSnapshot(args.path as string),
    stop: async () => {
      await connector?.close();
      await dispose?.();
      return { stopped: true };
    },
  };
}

// ---- baseline: the coap package alone ----

function baselineRole(): Record<string, Handler> {
  let server: coap.Server | undefined;
  let agent: coap.Agent | undefined;
  let received = 0;
  let observations = 0;
  let registrations = 0;
  return {
    start: async () => {
      agent = new coap.Agent({ type: 'udp4' });
      const observeAll = (address: string, port: number) => {
        for (const pathname of OBSERVED_PATHS) {
          const request = coap.request({ hostname: address, port, pathname, observe: true, agent });
          request.on('response', (stream: coap.IncomingMessage) => {
            observations++;
            stream.on('data', () => received++);
          });
          request.on('error', () => undefined);
          request.end();
        }
      };
      server = coap.createServer({ type: 'udp4' }, (request, response) => {
        const path = request.url.split('?')[0];
        if (request.method === 'POST' && path === '/rd') {
          registrations++;
          response.code = '2.01';
          response.setOption('Location-Path', [Buffer.from('rd'), Buffer.from(String(registrations))]);
          response.end();
          observeAll(request.rsinfo.address, request.rsinfo.port);
        } else if (request.method === 'POST') {
          response.code = '2.04';
          response.end();
        } else {
          response.code = '2.02';
          response.end();
        }
      });
      await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
      const port = (server as unknown as { _sock: { address(): { port: number } } })._sock.address().port;
      return { coapPort: port };
    },
    stats: () => ({ received, observations, registrations }),
    memory: () => memory(),
    stop: async () => {
      server?.close();
      agent?.close();
      return { stopped: true };
    },
  };
}

function main(): void {
  const role = process.argv[2];
  const handlers =
    role === 'fleet'
      ? fleetRole()
      : role === 'connector'
        ? connectorRole()
        : role === 'baseline'
          ? baselineRole()
          : undefined;
  if (!handlers || !process.send) {
    process.stderr.write('usage: forked by bench/notifyThroughput.js with a role: fleet | connector | baseline\n');
    process.exit(2);
  }
  process.on('message', (message: WorkerRequest) => {
    const handler = handlers[message.command];
    const reply = (body: Omit<WorkerReply, 'id'>) => process.send?.({ id: message.id, ...body });
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

if (require.main === module) main();
