/**
 * Command line of the LwM2M device simulator:
 *   node dist/simulator/main.js --count 3 --prefix sim- --server 127.0.0.1:5683 --lifetime 60 --pmin 2 --pmax 30
 *   node dist/simulator/main.js --count 3 --psk-file .local/simulator-psk.json   (coaps:// to 127.0.0.1:5684)
 * Stops on SIGINT/SIGTERM, de-registering every device first (a second signal exits at once).
 */
import { statSync } from 'fs';
import { parseArgs } from 'util';
import { readPskFile } from './pskFile';
import { SimulatedFleetOptions, startSimulatedFleet } from './simulatedFleet';

const USAGE = `LwM2M device simulator: N devices, each its own UDP endpoint, registering with an LwM2M server.

Usage: node dist/simulator/main.js [options]

  --count N               number of devices (default 1)
  --prefix TEXT           endpoint name prefix; names are <prefix><nnn> (default sim-)
  --start-index N         number of the first device (default 1)
  --server HOST:PORT      LwM2M server address (default 127.0.0.1:5683, or 127.0.0.1:5684 with --psk-file;
                          IPv6 as [::1]:5683)
  --psk-file PATH         speak coaps:// (DTLS 1.2 PSK): a JSON file of each device's identity and key,
                          {"sim-001": {"identity": "sim-001", "key": "<hex or base64>"}, ...}; keep it mode 0600
                          (keys never go on the command line, where ps shows them)
  --lifetime SECONDS      registration lifetime (default 300)
  --pmin SECONDS          pmin that overrides the server's write-attributes (demos)
  --pmax SECONDS          pmax that overrides the server's write-attributes (demos)
  --change-interval MS    how often battery, memory and clock change (default 1000; 0 = never)
  --confirmable-every N   every Nth notification of an observation is confirmable (default 10)
  --registrations-per-second N
                          start-up registration rate (default 200)
  --server-instance N     the Server object's instance id: </1/N> in the Register (default 0)
  --send-interval MS      report by LwM2M 1.1 Send as well: changed values as one POST /dp every MS
  --queue-mode            register with Q; sleep after the awake window, wake with an Update
  --awake-window MS       queue mode: awake this long after the last message to the server (default 93000)
  --sleep-interval MS     queue mode: sleep this long before waking with an Update (default 60000)
  --status-interval S     print a status line every S seconds (default 30; 0 = never)
  --help                  this text
`;

/** Exit code for bad command-line arguments. */
const EXIT_USAGE = 2;

export interface CommandLine {
  fleet: Omit<SimulatedFleetOptions, 'log'>;
  statusIntervalSeconds: number;
  /** --psk-file, when given (its entries are in `fleet.psk`). */
  pskFile?: string;
}

/** Parses the arguments; throws an Error naming the bad one. Returns undefined for --help. */
export function parseCommandLine(argv: readonly string[]): CommandLine | undefined {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      count: { type: 'string' },
      prefix: { type: 'string' },
      'start-index': { type: 'string' },
      server: { type: 'string' },
      lifetime: { type: 'string' },
      pmin: { type: 'string' },
      pmax: { type: 'string' },
      'change-interval': { type: 'string' },
      'confirmable-every': { type: 'string' },
      'registrations-per-second': { type: 'string' },
      'status-interval': { type: 'string' },
      'server-instance': { type: 'string' },
      'send-interval': { type: 'string' },
      'queue-mode': { type: 'boolean' },
      'awake-window': { type: 'string' },
      'sleep-interval': { type: 'string' },
      'psk-file': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) return undefined;
  const number = (name: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    if (!/^\d+(\.\d+)?$/.test(raw)) throw new Error(`--${name} must be a number; got "${raw}"`);
    return Number(raw);
  };
  const pskFile = values['psk-file'];
  const server = parseServer(values.server ?? (pskFile === undefined ? '127.0.0.1:5683' : '127.0.0.1:5684'));
  return {
    fleet: {
      psk: pskFile === undefined ? undefined : readPskFile(pskFile),
      count: number('count', values.count) ?? 1,
      prefix: values.prefix,
      startIndex: number('start-index', values['start-index']),
      server,
      lifetime: number('lifetime', values.lifetime),
      pmin: number('pmin', values.pmin),
      pmax: number('pmax', values.pmax),
      changeIntervalMs: number('change-interval', values['change-interval']),
      confirmableEvery: number('confirmable-every', values['confirmable-every']),
      registrationsPerSecond: number('registrations-per-second', values['registrations-per-second']),
      serverInstanceId: number('server-instance', values['server-instance']),
      sendIntervalMs: number('send-interval', values['send-interval']),
      queueMode: values['queue-mode'],
      awakeWindowMs: number('awake-window', values['awake-window']),
      sleepIntervalMs: number('sleep-interval', values['sleep-interval']),
    },
    statusIntervalSeconds: number('status-interval', values['status-interval']) ?? 30,
    pskFile,
  };
}

/** `host:port`, `[v6]:port`, or a bare host (port 5683). */
export function parseServer(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(text.trim());
  const port = match?.[3] === undefined ? 5683 : Number(match[3]);
  if (!match || port < 1 || port > 65_535) {
    throw new Error(`--server must be HOST:PORT (IPv6 as [::1]:5683); got "${text}"`);
  }
  return { host: match[1] ?? match[2], port };
}

async function main(): Promise<void> {
  let commandLine: CommandLine | undefined;
  try {
    commandLine = parseCommandLine(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nRun with --help for the options.\n`);
    process.exit(EXIT_USAGE);
  }
  if (!commandLine) {
    process.stdout.write(USAGE);
    return;
  }
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const pskFile = commandLine.pskFile;
  if (pskFile !== undefined && (statSync(pskFile).mode & 0o077) !== 0) {
    log(`warning: the PSK file ${pskFile} is readable by other users; chmod 600 it`);
  }
  let fleet;
  try {
    fleet = await startSimulatedFleet({ ...commandLine.fleet, log });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(error instanceof RangeError ? EXIT_USAGE : 1);
  }
  const started = fleet;
  const status =
    commandLine.statusIntervalSeconds > 0
      ? setInterval(() => {
          const counters = started.counters();
          const registered = started.devices.filter((device) => device.isRegistered).length;
          log(
            `status: ${registered}/${started.devices.length} registered, ${counters.notificationsSent} notifications, ` +
              `${counters.requestsServed} requests served, ${counters.registrations} registrations`,
          );
        }, commandLine.statusIntervalSeconds * 1000)
      : undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      log(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    log(`${signal}: de-registering ${started.devices.length} devices`);
    if (status) clearInterval(status);
    started.stop({ deregister: true }).then(
      () => process.exit(0),
      (error: unknown) => {
        log(`stop failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

if (require.main === module) {
  void main();
}
