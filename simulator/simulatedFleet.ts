/**
 * A fleet of simulated LwM2M devices in one process: N devices, each with its own UDP socket, sharing one
 * scheduler (one armed timer for the whole fleet). With `psk`, every device speaks coaps:// (DTLS 1.2 PSK) with its
 * own identity and key. This is the programmatic API that tests, benchmarks and
 * the local stack use; `main.ts` is its command line.
 */
import { lookup } from 'dns/promises';
import { Clock, systemClock } from './clock';
import { PskCredentials } from './deviceTransport';
import { validateBlockSize } from './blockwise';
import { Scheduler, ScheduledTask } from './scheduler';
import { DeviceCounters, SimulatedDevice } from './simulatedDevice';

export interface SimulatedFleetOptions {
  /** Number of devices, 1-10,000. */
  count: number;
  /** Endpoint names are `<prefix><nnn>` (`sim-001`); default `sim-`. Letters, digits and `._~-` only. */
  prefix?: string;
  /** The LwM2M server (connector) to register with: its coaps port when `psk` is given. */
  server: { host: string; port: number };
  /**
   * Each device's DTLS pre-shared key by endpoint name: every device of the fleet must have one, and the whole fleet
   * then speaks coaps://. Absent: plain CoAP.
   */
  psk?: ReadonlyMap<string, PskCredentials>;
  /** Registration lifetime, seconds (default 300); Update is sent at 85 % of it. */
  lifetime?: number;
  /** pmin, seconds, that wins over Write-Attributes and defaults (demos). */
  pmin?: number;
  /** pmax, seconds, that wins over Write-Attributes and defaults (demos). */
  pmax?: number;
  /** How often each device's values change (battery, memory, clock), ms; default 1000, 0 = never. */
  changeIntervalMs?: number;
  /** Number of the first device (default 1: `sim-001`). */
  startIndex?: number;
  /** Receives log lines (registrations, failures, reboots); default: silent. */
  log?: (line: string) => void;

  /** Every Nth notification of an observation is confirmable (default 10); 0 = none, 1 = all. */
  confirmableEvery?: number;
  /** Registrations started per second at start-up, spreading the load on the server (default 200). */
  registrationsPerSecond?: number;
  /** Delay between a reboot (Execute /3/0/4) and the Register from the new port, ms (default 1000). */
  rebootDelayMs?: number;
  /** Duration of each firmware step (download, install), ms (default 2000). */
  firmwareStepMs?: number;
  /** Bound on waiting for a De-register answer when stopping, ms (default 5000). */
  deregisterTimeoutMs?: number;
  /** Initial /1/0/2 Default Minimum Period, seconds (default 0). */
  defaultMinPeriod?: number;
  /** Initial /1/0/3 Default Maximum Period, seconds (default 3600). */
  defaultMaxPeriod?: number;
  /** Devices announce `ct=112` and answer in SenML CBOR unless the server's Accept asks otherwise (default false). */
  prefersSenmlCbor?: boolean;
  /**
   * Devices with a small buffer: responses and notifications larger than this many bytes go as Block2 blocks, a
   * larger Register payload as Block1 blocks (RFC 7959; 16-1024, a power of two). Default: no blocks.
   */
  blockSize?: number;
  /** The Server object's instance id: `</1/1>` in the Register and served at `/1/1` (0-65534; default 0). */
  serverInstanceId?: number;
  /**
   * Devices report by LwM2M 1.1 Send as well: every this many ms, the values changed since the last Send go as one
   * `POST /dp` (SenML JSON, or SenML CBOR with `prefersSenmlCbor`, base time the send time). Notifications go on
   * beside it (`pauseNotifications` for a device that only Sends). Default: no Send.
   */
  sendIntervalMs?: number;
  /**
   * Queue mode: devices register with `Q`, sleep `awakeWindowMs` after their Register/Update or last answer (receive
   * nothing, send nothing, hold notifications and Sends back), and wake every `sleepIntervalMs` with an Update (default
   * false).
   */
  queueMode?: boolean;
  /** Queue mode: how long a device stays awake after its last message to the server, ms (default 93,000: CoAP MAX_TRANSMIT_WAIT). */
  awakeWindowMs?: number;
  /** Queue mode: how long a device sleeps before it wakes with an Update, ms (default 60,000). */
  sleepIntervalMs?: number;
  /** With `psk`: how long a DTLS handshake may take before the Register counts as failed, ms (default 10,000). */
  dtlsHandshakeTimeoutMs?: number;
  /** Local address the device sockets bind (default: loopback for a loopback server, else all). */
  bindAddress?: string;
  /** Time source (tests inject a `ManualClock`); default the real clock. */
  clock?: Clock;
}

export interface SimulatedFleet {
  readonly devices: readonly SimulatedDevice[];
  /** The device with this endpoint name. */
  device(endpoint: string): SimulatedDevice | undefined;
  /** Counters summed over the fleet (a snapshot). */
  counters(): DeviceCounters;
  /** Resolves when every device is registered. */
  allRegistered(): Promise<void>;
  /** Stops every device (De-register first unless `deregister: false`), then the scheduler. Idempotent. */
  stop(options?: { deregister?: boolean }): Promise<void>;
}

const DEFAULTS = {
  prefix: 'sim-',
  lifetime: 300,
  changeIntervalMs: 1000,
  startIndex: 1,
  confirmableEvery: 10,
  registrationsPerSecond: 200,
  rebootDelayMs: 1000,
  firmwareStepMs: 2000,
  deregisterTimeoutMs: 5000,
  defaultMinPeriod: 0,
  defaultMaxPeriod: 3600,
  awakeWindowMs: 93_000,
  sleepIntervalMs: 60_000,
} as const;

/** Most devices one fleet may hold (one socket each: mind `ulimit -n`). */
export const MAX_FLEET_SIZE = 10_000;
/** Shortest interval between two change ticks, ms: a fleet's changes are spread over slices this far apart. */
const MIN_CHANGE_TICK_MS = 10;
/** Sockets opened, or devices stopped, at a time. */
const CONCURRENCY = 100;

/** Starts the fleet: every device's socket is bound when this resolves; registrations follow, spread out. */
export async function startSimulatedFleet(options: SimulatedFleetOptions): Promise<SimulatedFleet> {
  const settings = validate(options);
  const log = options.log ?? (() => undefined);
  const clock = options.clock ?? systemClock;
  const scheduler = new Scheduler(clock, (error) => log(`simulator task failed: ${message(error)}`));
  const server = await resolveServer(options.server.host, options.server.port);
  const loopback = server.family === 4 ? server.address.startsWith('127.') : server.address === '::1';
  const bindAddress =
    options.bindAddress ?? (server.family === 4 ? (loopback ? '127.0.0.1' : '0.0.0.0') : loopback ? '::1' : '::');
  const width = Math.max(3, String(settings.startIndex + settings.count - 1).length);
  if (options.psk) validatePsk(options.psk, settings, width);

  const devices: SimulatedDevice[] = [];
  try {
    for (let first = 0; first < settings.count; first += CONCURRENCY) {
      const batch = [];
      for (let i = first; i < Math.min(settings.count, first + CONCURRENCY); i++) {
        const index = settings.startIndex + i;
        const endpoint = `${settings.prefix}${String(index).padStart(width, '0')}`;
        batch.push(
          SimulatedDevice.create({
            endpoint,
            seed: index,
            server: { address: server.address, port: options.server.port },
            security: options.psk?.get(endpoint),
            dtlsHandshakeTimeoutMs: options.dtlsHandshakeTimeoutMs,
            socketType: server.family === 4 ? 'udp4' : 'udp6',
            bindAddress,
            lifetimeSeconds: settings.lifetime,
            defaultMinPeriodSeconds: settings.defaultMinPeriod,
            defaultMaxPeriodSeconds: settings.defaultMaxPeriod,
            pminOverrideSeconds: options.pmin,
            pmaxOverrideSeconds: options.pmax,
            confirmableEvery: settings.confirmableEvery,
            rebootDelayMs: settings.rebootDelayMs,
            firmwareStepMs: settings.firmwareStepMs,
            deregisterTimeoutMs: settings.deregisterTimeoutMs,
            prefersSenmlCbor: options.prefersSenmlCbor === true,
            blockSize: options.blockSize,
            serverInstanceId: settings.serverInstanceId,
            sendIntervalMs: settings.sendIntervalMs,
            queueMode: settings.queueMode,
            scheduler,
            log,
          }),
        );
      }
      devices.push(...(await Promise.all(batch)));
    }
  } catch (error) {
    await Promise.all(devices.map((device) => device.stop({ deregister: false })));
    scheduler.stop();
    throw error;
  }

  const registrationSpacingMs = 1000 / settings.registrationsPerSecond;
  const registrationTasks = devices.map((device, i) =>
    i === 0 ? undefined : scheduler.after(i * registrationSpacingMs, () => device.startRegistration()),
  );
  devices[0].startRegistration();

  let changeTask: ScheduledTask | undefined;
  if (settings.changeIntervalMs > 0) {
    const slices = Math.max(1, Math.min(devices.length, Math.floor(settings.changeIntervalMs / MIN_CHANGE_TICK_MS)));
    const tickMs = settings.changeIntervalMs / slices;
    const startMs = scheduler.now();
    let tick = 0;
    const runTick = () => {
      const slice = tick % slices;
      for (let i = slice; i < devices.length; i += slices) devices[i].step();
      tick++;
      changeTask = scheduler.at(startMs + (tick + 1) * tickMs, runTick);
    };
    changeTask = scheduler.at(startMs + tickMs, runTick);
  }

  const byEndpoint = new Map(devices.map((device) => [device.endpoint, device]));
  let stopping: Promise<void> | undefined;
  log(`simulated fleet of ${devices.length} devices started for ${options.server.host}:${options.server.port}`);
  return {
    devices,
    device: (endpoint) => byEndpoint.get(endpoint),
    counters: () => sumCounters(devices.map((device) => device.counters)),
    allRegistered: () => Promise.all(devices.map((device) => device.registered())).then(() => undefined),
    stop(stopOptions = {}) {
      stopping ??= (async () => {
        scheduler.cancel(changeTask);
        for (const task of registrationTasks) scheduler.cancel(task);
        for (let first = 0; first < devices.length; first += CONCURRENCY) {
          await Promise.all(devices.slice(first, first + CONCURRENCY).map((device) => device.stop(stopOptions)));
        }
        scheduler.stop();
        log(`simulated fleet of ${devices.length} devices stopped`);
      })();
      return stopping;
    },
  };
}

type ValidatedSettings = Required<
  Pick<
    SimulatedFleetOptions,
    | 'count'
    | 'prefix'
    | 'lifetime'
    | 'changeIntervalMs'
    | 'startIndex'
    | 'confirmableEvery'
    | 'registrationsPerSecond'
    | 'rebootDelayMs'
    | 'firmwareStepMs'
    | 'deregisterTimeoutMs'
    | 'defaultMinPeriod'
    | 'defaultMaxPeriod'
    | 'serverInstanceId'
  >
> &
  Pick<SimulatedFleetOptions, 'sendIntervalMs'> & {
    queueMode?: { awakeWindowMs: number; sleepIntervalMs: number };
  };

/** Checks the options; a bad one throws a RangeError that names it and what it must be. */
function validate(options: SimulatedFleetOptions): ValidatedSettings {
  if (options.blockSize !== undefined) validateBlockSize(options.blockSize);
  const fail = (name: string, expected: string, got: unknown): never => {
    throw new RangeError(`startSimulatedFleet: ${name} must be ${expected}; got ${JSON.stringify(got)}`);
  };
  const integer = (name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      fail(name, `an integer from ${min} to ${max}`, value);
    }
    return value as number;
  };
  const optionalInteger = (name: keyof SimulatedFleetOptions, fallback: number, min: number, max?: number): number =>
    options[name] === undefined ? fallback : integer(name, options[name], min, max);

  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  const count = integer('count', options.count, 1, MAX_FLEET_SIZE);
  const prefix = options.prefix ?? DEFAULTS.prefix;
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9._~-]{0,48}$/.test(prefix)) {
    fail('prefix', 'up to 48 letters, digits or ._~-', prefix);
  }
  if (typeof options.server !== 'object' || options.server === null) fail('server', '{ host, port }', options.server);
  if (typeof options.server.host !== 'string' || options.server.host.trim() === '') {
    fail('server.host', 'a host name or IP address', options.server.host);
  }
  integer('server.port', options.server.port, 1, 65_535);
  const pmin = options.pmin === undefined ? undefined : integer('pmin', options.pmin, 0);
  const pmax = options.pmax === undefined ? undefined : integer('pmax', options.pmax, 1);
  if (pmin !== undefined && pmax !== undefined && pmax < pmin) fail('pmax', `>= pmin (${pmin})`, pmax);
  if (options.log !== undefined && typeof options.log !== 'function') fail('log', 'a function', typeof options.log);
  const rate = options.registrationsPerSecond ?? DEFAULTS.registrationsPerSecond;
  if (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate)) {
    fail('registrationsPerSecond', 'a number above 0', rate);
  }
  return {
    count,
    prefix,
    lifetime: optionalInteger('lifetime', DEFAULTS.lifetime, 1, 2_147_483_647),
    changeIntervalMs: optionalInteger('changeIntervalMs', DEFAULTS.changeIntervalMs, 0),
    startIndex: optionalInteger('startIndex', DEFAULTS.startIndex, 0),
    confirmableEvery: optionalInteger('confirmableEvery', DEFAULTS.confirmableEvery, 0),
    registrationsPerSecond: rate,
    rebootDelayMs: optionalInteger('rebootDelayMs', DEFAULTS.rebootDelayMs, 0),
    firmwareStepMs: optionalInteger('firmwareStepMs', DEFAULTS.firmwareStepMs, 0),
    deregisterTimeoutMs: optionalInteger('deregisterTimeoutMs', DEFAULTS.deregisterTimeoutMs, 1),
    defaultMinPeriod: optionalInteger('defaultMinPeriod', DEFAULTS.defaultMinPeriod, 0),
    defaultMaxPeriod: optionalInteger('defaultMaxPeriod', DEFAULTS.defaultMaxPeriod, 1),
    serverInstanceId: optionalInteger('serverInstanceId', 0, 0, 65_534),
    sendIntervalMs:
      options.sendIntervalMs === undefined ? undefined : integer('sendIntervalMs', options.sendIntervalMs, 1),
    queueMode:
      options.queueMode === true
        ? {
            awakeWindowMs: optionalInteger('awakeWindowMs', DEFAULTS.awakeWindowMs, 1),
            sleepIntervalMs: optionalInteger('sleepIntervalMs', DEFAULTS.sleepIntervalMs, 1),
          }
        : undefined,
  };
}

/** Every endpoint of the fleet has an identity (1-128 printable ASCII) and a 16-64 byte key; never names the key. */
function validatePsk(psk: ReadonlyMap<string, PskCredentials>, settings: ValidatedSettings, width: number): void {
  for (let i = 0; i < settings.count; i++) {
    const endpoint = `${settings.prefix}${String(settings.startIndex + i).padStart(width, '0')}`;
    const credentials = psk.get(endpoint);
    if (!credentials) throw new RangeError(`startSimulatedFleet: psk has no identity and key for ${endpoint}`);
    if (typeof credentials.identity !== 'string' || !/^[\x20-\x7e]{1,128}$/.test(credentials.identity)) {
      throw new RangeError(`startSimulatedFleet: the PSK identity of ${endpoint} must be 1-128 printable ASCII`);
    }
    if (!Buffer.isBuffer(credentials.key) || credentials.key.length < 16 || credentials.key.length > 64) {
      throw new RangeError(`startSimulatedFleet: the PSK of ${endpoint} must be 16-64 bytes`);
    }
  }
}

async function resolveServer(host: string, port: number): Promise<{ address: string; family: 4 | 6 }> {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  try {
    const { address, family } = await lookup(bare);
    return { address, family: family === 6 ? 6 : 4 };
  } catch (error) {
    throw new Error(`startSimulatedFleet: cannot resolve server host "${host}" (port ${port}): ${message(error)}`);
  }
}

function sumCounters(all: DeviceCounters[]): DeviceCounters {
  const total = { ...all[0] };
  for (const key of Object.keys(total) as (keyof DeviceCounters)[]) {
    total[key] = all.reduce((sum, counters) => sum + counters[key], 0);
  }
  return total;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
