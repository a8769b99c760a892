/**
 * CLI: the local Service Bus-compatible endpoint.
 * `node dist/local/serviceBus/main.js --port 5672 [--host 127.0.0.1] [--entities file.json] [--log debug|error]`
 * Prints the connection string; stops cleanly on SIGINT/SIGTERM.
 */
import { parseFlags } from '../flags';
import { DEFAULT_SERVICE_BUS_PORT, startServiceBusEndpoint } from './serviceBusEndpoint';

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    port: String(DEFAULT_SERVICE_BUS_PORT),
    host: '127.0.0.1',
    entities: '',
    log: 'error',
  });
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0-65535, got '${flags.port}'`);
  if (flags.log !== 'debug' && flags.log !== 'error')
    throw new Error(`--log must be debug or error, got '${flags.log}'`);
  const verbose = flags.log === 'debug';
  const endpoint = await startServiceBusEndpoint({
    port,
    host: flags.host,
    entitiesPath: flags.entities || undefined,
    log: (line) => {
      if (verbose || line.startsWith('error')) console.log(`[service-bus] ${line}`);
    },
  });
  console.log(`Service Bus (local) listening on ${flags.host}:${endpoint.port}`);
  console.log(`  connection string: ${endpoint.connectionString}`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    endpoint.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`Service Bus (local) failed to stop cleanly: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`Service Bus (local) failed to start: ${(error as Error).message}`);
  process.exit(1);
});
