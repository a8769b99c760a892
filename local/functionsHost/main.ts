/**
 * CLI for the local Functions host:
 *   node dist/local/functionsHost/main.js [--app-root <dir>] [--port <n>] [--hostname <addr>]
 *                                         [--max-request-body-bytes <n>] [--quiet-invocations]
 * App settings come from the environment (and local.settings.json Values for names not set). Stops cleanly on SIGINT
 * or SIGTERM (a second signal exits at once). Exit code 1 when the app cannot start.
 */
import { DEFAULT_FUNCTIONS_PORT, startFunctionsHost, type FunctionsHost } from './functionsHost';
import { describeError } from './hostLogger';

interface CliOptions {
  appRoot: string;
  port: number;
  hostname: string;
  maxRequestBodyBytes?: number;
  logInvocations: boolean;
}

const USAGE =
  'usage: main.js [--app-root <dir>] [--port <n>] [--hostname <addr>] [--max-request-body-bytes <n>] [--quiet-invocations]';

function parseArguments(args: string[]): CliOptions {
  const options: CliOptions = {
    appRoot: process.cwd(),
    port: DEFAULT_FUNCTIONS_PORT,
    hostname: '127.0.0.1',
    logInvocations: true,
  };
  for (let index = 0; index < args.length; index++) {
    const name = args[index];
    const value = (): string => {
      const next = args[++index];
      if (next === undefined || next.startsWith('--')) {
        throw new Error(`${name} needs a value.\n${USAGE}`);
      }
      return next;
    };
    const integer = (text: string, min: number, max: number): number => {
      const number = Number(text);
      if (!Number.isInteger(number) || number < min || number > max) {
        throw new Error(`${name} must be an integer from ${min} to ${max}, got "${text}".`);
      }
      return number;
    };
    switch (name) {
      case '--app-root':
        options.appRoot = value();
        break;
      case '--port':
        options.port = integer(value(), 0, 65535);
        break;
      case '--hostname':
        options.hostname = value();
        break;
      case '--max-request-body-bytes':
        options.maxRequestBodyBytes = integer(value(), 1, Number.MAX_SAFE_INTEGER);
        break;
      case '--quiet-invocations':
        options.logInvocations = false;
        break;
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`Unknown argument "${name}".\n${USAGE}`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  let host: FunctionsHost | undefined;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      process.stderr.write(`Received ${signal} again; exiting now.\n`);
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`Received ${signal}; stopping the Functions host.\n`);
    if (host) {
      void closeAndExit(host);
    }
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A function's stray promise must not take the host down; the Functions worker logs these too.
  process.on('unhandledRejection', (reason) => {
    process.stderr.write(`Unhandled promise rejection in the app: ${describeError(reason)}\n`);
  });

  try {
    const options = parseArguments(process.argv.slice(2));
    host = await startFunctionsHost(options);
  } catch (error) {
    process.stderr.write(
      `The Functions host could not start: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  }
  if (stopping) {
    await closeAndExit(host);
  }
}

async function closeAndExit(host: FunctionsHost): Promise<void> {
  try {
    await host.close();
  } catch (error) {
    process.stderr.write(`Stopping failed: ${describeError(error)}\n`);
    process.exit(1);
  }
  process.exit(0);
}

void main();
