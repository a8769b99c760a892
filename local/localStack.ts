/**
 * The local stack: every piece of the system on one machine, with no cloud account and no Docker, each on
 * the port where its official emulator listens (so an emulator can be swapped in). Used by `npm start` and
 * by the integration tests' global setup (on free ports).
 *
 * Every piece is a child process; `stop()` ends them in reverse start order, SIGTERM first.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, rmSync, writeFileSync, WriteStream } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MAX_BODY_BYTES } from '../functions/lib/httpAdapter';
import { SERVICE_BUS_CONNECTION } from '../shared/constants';
import { EMULATOR_KEY } from './cosmosServer';
import { REQUEST_BODY_LIMIT_SETTING } from './functionsHost/hostSettings';

export interface StackPorts {
  cosmos: number;
  blob: number;
  queue: number;
  table: number;
  serviceBus: number;
  functions: number;
  coap: number;
  /** CoAP over DTLS (coaps://), UDP. */
  coaps: number;
  connectorApi: number;
}

/**
 * The official emulators' ports (Cosmos 8081, Azurite 10000-10002, Service Bus 5672, Functions 7071), and CoAP's
 * (5683, coaps 5684).
 */
export const DEFAULT_PORTS: StackPorts = {
  cosmos: 8081,
  blob: 10000,
  queue: 10001,
  table: 10002,
  serviceBus: 5672,
  functions: 7071,
  coap: 5683,
  coaps: 5684,
  connectorApi: 8090,
};

/** Azurite's published development account (not a secret: every Azurite and storage emulator has it). */
const AZURITE_ACCOUNT = 'devstoreaccount1';
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export type PieceName = 'cosmos' | 'azurite' | 'serviceBus' | 'functions' | 'connector' | 'simulator';

export interface LocalStackOptions {
  /** The project root (holds package.json and dist/). */
  root: string;
  ports?: Partial<StackPorts>;
  /** Where Azurite data, certificates and logs go (git-ignored). */
  dataDir?: string;
  /**
   * Simulated devices started with the stack: 0 for none. Each `sim-NNN` is provisioned with a PSK the service
   * generates, handed to the simulator in `<dataDir>/simulator-psk.json` (mode 0600), and talks coaps://.
   */
  simulatedDevices?: number;
  /** Observation attributes in seconds for every property class, so a demo fills in within seconds. */
  observation?: { pmin: number; pmax: number };
  /** Staleness sweep schedule (six-field NCRONTAB) and grace, seconds. */
  staleness?: { schedule?: string; graceSeconds?: number };
  /** Extra app settings for the Functions host and the connector. */
  settings?: Record<string, string>;
  /** Child output: 'console' prefixes each line with the piece; 'files' writes `<dataDir>/logs/<piece>.log`. */
  output?: 'console' | 'files';
  /** Leave out the Functions host's line per invocation (benchmarks). */
  quietInvocations?: boolean;
  /** Pieces to start (default: all). */
  pieces?: readonly PieceName[];
  /** Extra Node.js flags for one piece's process only (for example `--cpu-prof` on the Functions host). */
  nodeFlags?: Partial<Record<PieceName, readonly string[]>>;
  /**
   * Each piece in its own process group, so that a terminal's Ctrl-C reaches the launcher only and the launcher stops
   * the pieces in order (the connector writes its disconnects while Cosmos is still up). The launcher must then stop
   * them on every way out (`stop()`, or a kill from an exit handler with the processes `onSpawn` gave it). Default
   * false: a test run's Ctrl-C reaches every piece at once, and nothing outlives it.
   */
  ownProcessGroups?: boolean;
  /** Called with each piece's process as it is spawned (benchmarks account CPU time per process). */
  onSpawn?: (piece: PieceName, child: ChildProcess) => void;
  log?: (line: string) => void;
}

export interface LocalStack {
  ports: StackPorts;
  /** The app settings every piece got (what local.settings.json would hold). */
  settings: Record<string, string>;
  /** `http://127.0.0.1:<functions>/api` */
  apiBaseUrl: string;
  connectorApiUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

interface RunningPiece {
  name: string;
  child: ChildProcess;
  output?: WriteStream;
}

const ALL_PIECES: readonly PieceName[] = ['cosmos', 'azurite', 'serviceBus', 'functions', 'connector', 'simulator'];
const READY_TIMEOUT_MS = 60_000;

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const ports: StackPorts = { ...DEFAULT_PORTS, ...options.ports };
  const dataDir = path.resolve(options.dataDir ?? path.join(options.root, '.local'));
  const log = options.log ?? ((line: string) => console.log(line));
  const pieces = new Set(options.pieces ?? ALL_PIECES);
  const certDir = path.join(dataDir, 'certs');
  mkdirSync(path.join(dataDir, 'logs'), { recursive: true });

  const settings = localSettings({ ports, certDir, options });
  const running: RunningPiece[] = [];
  const dist = (...parts: string[]) => path.join(options.root, 'dist', ...parts);

  const start = (kind: PieceName, script: string, args: string[], name: string = kind): RunningPiece => {
    if (!existsSync(script)) throw new Error(`${name}: ${script} is missing; run \`npm run build\` first`);
    const flags = [...(kind === 'functions' ? workerArguments(settings) : []), ...(options.nodeFlags?.[kind] ?? [])];
    const child = spawn(process.execPath, [...flags, script, ...args], {
      cwd: options.root,
      env: { ...process.env, ...settings },
      detached: options.ownProcessGroups === true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    options.onSpawn?.(kind, child);
    const piece: RunningPiece = { name, child };
    if (options.output === 'files') {
      piece.output = createWriteStream(path.join(dataDir, 'logs', `${name}.log`), { flags: 'a' });
      child.stdout?.pipe(piece.output, { end: false });
      child.stderr?.pipe(piece.output, { end: false });
    } else {
      prefixLines(child.stdout, name, (line) => log(line));
      prefixLines(child.stderr, name, (line) => log(line));
    }
    running.push(piece);
    return piece;
  };

  const stop = async () => {
    for (const piece of [...running].reverse()) await stopPiece(piece);
    running.length = 0;
  };

  try {
    if (pieces.has('cosmos')) {
      const piece = start('cosmos', dist('local', 'cosmosMain.js'), [
        '--port',
        String(ports.cosmos),
        '--cert-dir',
        certDir,
      ]);
      await waitForPort(piece, ports.cosmos);
    }
    if (pieces.has('azurite')) {
      const azurite = path.join(options.root, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
      const piece = start('azurite', azurite, [
        '--silent',
        '--disableTelemetry',
        '--skipApiVersionCheck',
        '--location',
        path.join(dataDir, 'azurite'),
        '--blobPort',
        String(ports.blob),
        '--queuePort',
        String(ports.queue),
        '--tablePort',
        String(ports.table),
      ]);
      await waitForPort(piece, ports.blob);
    }
    if (pieces.has('serviceBus')) {
      const piece = start(
        'serviceBus',
        dist('local', 'serviceBus', 'main.js'),
        ['--port', String(ports.serviceBus)],
        'servicebus',
      );
      await waitForPort(piece, ports.serviceBus);
    }
    if (pieces.has('connector')) {
      const piece = start('connector', dist('connector', 'main.js'), []);
      await waitForHealth(piece, `http://127.0.0.1:${ports.connectorApi}/health`);
    }
    if (pieces.has('functions')) {
      const piece = start('functions', dist('local', 'functionsHost', 'main.js'), [
        '--app-root',
        options.root,
        '--port',
        String(ports.functions),
        ...(options.quietInvocations ? ['--quiet-invocations'] : []),
      ]);
      await waitForPort(piece, ports.functions);
    }
    const apiBaseUrl = `http://127.0.0.1:${ports.functions}/api`;
    const devices = options.simulatedDevices ?? 0;
    if (pieces.has('simulator') && devices > 0) {
      const pskFile = path.join(dataDir, SIMULATOR_PSK_FILE);
      await provisionSimulatedDevices(apiBaseUrl, devices, pskFile);
      const observation = options.observation;
      start('simulator', dist('simulator', 'main.js'), [
        '--count',
        String(devices),
        '--prefix',
        'sim-',
        '--server',
        `127.0.0.1:${ports.coaps}`,
        '--psk-file',
        pskFile,
        ...(observation ? ['--pmin', String(observation.pmin), '--pmax', String(observation.pmax)] : []),
      ]);
    }
    return {
      ports,
      settings,
      apiBaseUrl,
      connectorApiUrl: `http://127.0.0.1:${ports.connectorApi}`,
      dataDir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The simulator's PSK file under the data dir: each device's identity and key (simulator/pskFile.ts). */
export const SIMULATOR_PSK_FILE = 'simulator-psk.json';

/**
 * Provisions `sim-001`.. with `security: {mode: 'psk'}` and writes the keys the service generated to `pskFile`
 * (mode 0600). A device that already exists (200: its key is not shown again) gets a new one from
 * `POST /devices/{id}/credentials`.
 */
async function provisionSimulatedDevices(apiBaseUrl: string, count: number, pskFile: string): Promise<void> {
  const entries: Record<string, { identity: string; key: string }> = {};
  const call = async (deviceId: string, method: string, url: string, body: unknown) => {
    const response = await fetch(url, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`Provisioning ${deviceId} failed: ${response.status} ${await response.text()}`);
    return {
      status: response.status,
      body: (await response.json()) as { security?: { identity?: string; key?: string } },
    };
  };
  for (let i = 1; i <= count; i++) {
    const deviceId = `sim-${String(i).padStart(3, '0')}`;
    const url = `${apiBaseUrl}/devices/${deviceId}`;
    let { body } = await call(deviceId, 'PUT', url, { security: { mode: 'psk' }, tags: { site: 'local-demo' } });
    if (body.security?.key === undefined) {
      ({ body } = await call(deviceId, 'POST', `${url}/credentials`, { security: { mode: 'psk' } }));
    }
    const { identity, key } = body.security ?? {};
    if (identity === undefined || key === undefined) {
      throw new Error(`Provisioning ${deviceId}: the service returned no generated PSK`);
    }
    entries[deviceId] = { identity, key };
  }
  // A new file each time: writeFileSync's mode applies only to a file it creates.
  rmSync(pskFile, { force: true });
  writeFileSync(pskFile, JSON.stringify(entries, null, 2), { mode: 0o600 });
}

function localSettings(input: {
  ports: StackPorts;
  certDir: string;
  options: LocalStackOptions;
}): Record<string, string> {
  const { ports, certDir, options } = input;
  const settings: Record<string, string> = {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    AzureWebJobsStorage:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
      `BlobEndpoint=http://127.0.0.1:${ports.blob}/${AZURITE_ACCOUNT};` +
      `QueueEndpoint=http://127.0.0.1:${ports.queue}/${AZURITE_ACCOUNT};` +
      `TableEndpoint=http://127.0.0.1:${ports.table}/${AZURITE_ACCOUNT};`,
    CosmosDb__accountEndpoint: `https://localhost:${ports.cosmos}`,
    CosmosDb__accountKey: EMULATOR_KEY,
    CosmosDb__trustedCertificatePath: path.join(certDir, 'localhost-cert.pem'),
    [SERVICE_BUS_CONNECTION]:
      `Endpoint=sb://localhost:${ports.serviceBus};SharedAccessKeyName=RootManageSharedAccessKey;` +
      'SharedAccessKey=local;UseDevelopmentEmulator=true',
    // A fresh key per run: the internal API is guarded even locally, and no key is written down anywhere.
    Connector__apiKey: randomBytes(24).toString('base64url'),
    Connector__instanceId: 'connector-local',
    Connector__coapPort: String(ports.coap),
    Connector__coapsPort: String(ports.coaps),
    Connector__coapAddress: '127.0.0.1',
    Connector__apiPort: String(ports.connectorApi),
    Connector__apiUrl: `http://127.0.0.1:${ports.connectorApi}`,
    // The app's own body limit: the host refuses a larger body while it arrives, instead of buffering up to 100 MB.
    [REQUEST_BODY_LIMIT_SETTING]: String(MAX_BODY_BYTES),
  };
  if (options.observation) {
    for (const propertyClass of ['device', 'firmwareUpdate', 'server']) {
      settings[`Observe__${propertyClass}__pmin`] = String(options.observation.pmin);
      settings[`Observe__${propertyClass}__pmax`] = String(options.observation.pmax);
    }
  }
  // The Node.js worker's flags, as `func start` and Azure take them. A larger young generation: each HTTP invocation
  // allocates ~50 KB of short-lived request/response objects (@azure/functions, undici), and with the default 16 MB
  // semi-space the requests in flight at concurrency 16 survive scavenges into the old generation. Measured with
  // bench/shallowRead.ts's stack, A/B in one run: host CPU per shallow read -11%, median latency -15%.
  settings[WORKER_ARGUMENTS] = '--max-semi-space-size=32';
  // The timer binding reads its schedule from this setting (`%Staleness__schedule%`), so it is always set.
  settings.Staleness__schedule = options.staleness?.schedule ?? '0 */1 * * * *';
  settings.Staleness__graceSeconds = String(options.staleness?.graceSeconds ?? 93);
  // Likewise the unsent-job sweep's (`%Jobs__queuedSweepSchedule%`).
  settings.Jobs__queuedSweepSchedule = '0 */1 * * * *';
  return { ...settings, ...options.settings };
}

/** `languageWorkers__node__arguments`: extra arguments of the Node.js worker process, split on spaces. */
const WORKER_ARGUMENTS = 'languageWorkers__node__arguments';

export function workerArguments(settings: Record<string, string>): string[] {
  return (settings[WORKER_ARGUMENTS] ?? '').split(/\s+/).filter(Boolean);
}

function prefixLines(stream: NodeJS.ReadableStream | null, name: string, write: (line: string) => void): void {
  if (!stream) return;
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) write(`[${name}] ${line}`);
  });
}

function exited(piece: RunningPiece): Promise<never> {
  return new Promise((_, reject) => {
    piece.child.once('exit', (code, signal) =>
      reject(new Error(`${piece.name} exited during start-up (${signal ?? `code ${code}`}); see its output`)),
    );
  });
}

async function waitUntil(piece: RunningPiece, what: string, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  const died = exited(piece);
  died.catch(() => undefined);
  while (Date.now() < deadline) {
    if (await Promise.race([probe(), died])) return;
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), died]);
  }
  throw new Error(`${piece.name} did not become ready (${what}) within ${READY_TIMEOUT_MS / 1000} s`);
}

function waitForPort(piece: RunningPiece, port: number): Promise<void> {
  return waitUntil(piece, `port ${port}`, () => isListening(port));
}

function waitForHealth(piece: RunningPiece, url: string): Promise<void> {
  return waitUntil(piece, url, async () => {
    try {
      return (await fetch(url)).ok;
    } catch {
      return false;
    }
  });
}

export function isListening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function stopPiece(piece: RunningPiece): Promise<void> {
  const { child } = piece;
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
  piece.output?.end();
}

/** Free TCP ports on loopback (asked of the OS, then released), for a stack next to another one. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
