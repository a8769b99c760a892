/**
 * Shallow reads through the Functions host (GET /api/twins/{id}: HTTP -> @azure/functions -> Cosmos point read)
 * versus direct SDK point reads against the same local Cosmos server, in the same run, at concurrency 16.
 * Rounds alternate between the two paths so drift on a shared machine hits both alike.
 *
 *   npm run build && node dist/bench/shallowRead.js [--requests 3000] [--rounds 3]
 *
 * Target: the function path's median costs at most 1.5x a direct point read.
 */
import http from 'node:http';
import path from 'node:path';
import { createCosmosClient } from '../shared/cosmosClient';
import { openTwinsContainer } from '../shared/cosmosTwinStore';
import { loadCosmosConfig } from '../shared/config';
import { parseFlags } from '../local/flags';
import { freePorts, startLocalStack } from '../local/localStack';
import { fmt, measureConcurrent, median, percentile } from './stats';

const CONCURRENCY = 16;
const DEVICES = 100;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { requests: '3000', rounds: '3' });
  const requests = Number(flags.requests);
  const rounds = Number(flags.rounds);
  const root = path.resolve(__dirname, '..', '..');
  const [cosmos, blob, queue, table, serviceBus, functions, coap, connectorApi] = await freePorts(8);
  const stack = await startLocalStack({
    root,
    ports: { cosmos, blob, queue, table, serviceBus, functions, coap, connectorApi },
    dataDir: path.join(root, '.local', 'bench-stack'),
    output: 'files',
    quietInvocations: true,
    pieces: ['cosmos', 'azurite', 'serviceBus', 'functions'],
    log: () => undefined,
  });
  try {
    const ids = Array.from({ length: DEVICES }, (_, i) => `bench-${i}`);
    for (const id of ids) {
      const response = await fetch(`${stack.apiBaseUrl}/devices/${id}`, { method: 'PUT' });
      if (response.status >= 300) throw new Error(`provisioning ${id}: ${response.status}`);
    }
    const config = loadCosmosConfig(stack.settings);
    const client = createCosmosClient(config);
    const container = await openTwinsContainer(client, config.databaseName);

    const direct = async (i: number) => {
      const id = ids[i % DEVICES];
      const { resource } = await container.item(id, id).read();
      if (!resource) throw new Error(`direct read of ${id} found nothing`);
    };
    // A keep-alive HTTP/1.1 client, as lean as the SDK's own transport is for the baseline.
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const viaFunction = (i: number) =>
      new Promise<void>((resolve, reject) => {
        const request = http.get(`${stack.apiBaseUrl}/twins/${ids[i % DEVICES]}`, { agent }, (response) => {
          if (response.statusCode !== 200) reject(new Error(`GET twin: ${response.statusCode}`));
          response.on('data', () => undefined);
          response.on('end', () => resolve());
        });
        request.on('error', reject);
      });

    // Warm-up: connection pools, JIT, the host's lazy clients.
    await measureConcurrent(500, CONCURRENCY, direct);
    await measureConcurrent(500, CONCURRENCY, viaFunction);

    const directSamples: number[] = [];
    const functionSamples: number[] = [];
    let directSeconds = 0;
    let functionSeconds = 0;
    for (let round = 0; round < rounds; round++) {
      const a = await measureConcurrent(requests, CONCURRENCY, direct);
      const b = await measureConcurrent(requests, CONCURRENCY, viaFunction);
      directSamples.push(...a.latencies);
      functionSamples.push(...b.latencies);
      directSeconds += a.seconds;
      functionSeconds += b.seconds;
    }
    client.dispose();
    agent.destroy();

    const row = (name: string, samples: number[], seconds: number) =>
      `${name.padEnd(34)} median ${fmt(median(samples)).padStart(10)}   p99 ${fmt(percentile(samples, 99)).padStart(10)}` +
      `   ${(samples.length / seconds).toFixed(0).padStart(6)} req/s`;
    console.log(
      `Shallow reads, concurrency ${CONCURRENCY}, ${rounds} x ${requests} requests per path, ${DEVICES} twins`,
    );
    console.log(row('baseline: direct SDK point read', directSamples, directSeconds));
    console.log(row('GET /api/twins/{id} via the host', functionSamples, functionSeconds));
    const ratio = median(functionSamples) / median(directSamples);
    console.log(
      `ratio (function / direct): median ${ratio.toFixed(2)}x, p99 ${(
        percentile(functionSamples, 99) / percentile(directSamples, 99)
      ).toFixed(2)}x   target <= 1.5x median: ${ratio <= 1.5 ? 'met' : 'NOT met'}`,
    );
  } finally {
    await stack.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
