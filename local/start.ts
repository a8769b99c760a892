/**
 * `npm start`: the whole system on this machine, on the official emulators' ports, with a few simulated
 * devices whose twins fill in within seconds. Ctrl-C stops every piece.
 */
import { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { LocalStack, SIMULATOR_PSK_FILE, startLocalStack } from './localStack';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const devices = Number(process.env.SIMULATED_DEVICES ?? 3);
  // The pieces run in their own process groups: Ctrl-C comes here only, and `stop` ends them in order (simulator and
  // host first, Cosmos last), so the connector still records its disconnects. Any other way out kills what is left.
  const children: ChildProcess[] = [];
  process.on('exit', () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  const started: { stack?: LocalStack } = {};
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (!started.stack) process.exit(130); // still starting: the exit handler ends what was started
    console.log('Stopping the local stack...');
    void started.stack.stop().then(() => process.exit(0));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stop);

  const stack = await startLocalStack({
    root,
    simulatedDevices: devices,
    observation: { pmin: 2, pmax: 30 },
    staleness: { schedule: '*/10 * * * * *', graceSeconds: 5 },
    ownProcessGroups: true,
    onSpawn: (_, child) => children.push(child),
  });
  started.stack = stack;
  const { ports } = stack;
  console.log(
    [
      '',
      'lwm2m-twins local stack is up:',
      `  Functions API     ${stack.apiBaseUrl}   (try: curl ${stack.apiBaseUrl}/twins/sim-001)`,
      `  Cosmos DB         https://localhost:${ports.cosmos}   (certificate: ${stack.settings.CosmosDb__trustedCertificatePath})`,
      `  Azurite           blob ${ports.blob}, queue ${ports.queue}, table ${ports.table}   (data: ${path.join(stack.dataDir, 'azurite')})`,
      `  Service Bus       amqp://localhost:${ports.serviceBus}   (UseDevelopmentEmulator=true)`,
      `  CoAP connector    coap://127.0.0.1:${ports.coap}, coaps://127.0.0.1:${ports.coaps}   internal API ${stack.connectorApiUrl}`,
      `  Simulated devices ${devices} (sim-001..) over coaps, keys in ${path.join(stack.dataDir, SIMULATOR_PSK_FILE)}, pmin 2 s, pmax 30 s`,
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  console.error(`The local stack could not start: ${(error as Error).message}`);
  process.exit(1);
});
