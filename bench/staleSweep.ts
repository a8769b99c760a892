/**
 * The staleness sweep's cost follows the due twins, not the fleet: one sweep over 1,000 twins and one over 100,000
 * twins, the same 100 of them due, in the same run, against the local Cosmos server (in this process, so its HTTP
 * requests are counted where they arrive). Rounds alternate between the two fleets; between rounds the 100 due twins
 * are put back as they were.
 *
 *   npm run build && node dist/bench/staleSweep.js [--small 1000] [--large 100000] [--due 100] [--rounds 5]
 *
 * The local server scans every document per query (it has no index; Azure Cosmos DB serves `nextStaleAt <= @now`
 * from its range index) and, unpatched, copies its scan array per document: `useLinearFromClause` makes that scan
 * linear first, otherwise a query over 100,000 documents outlasts the SDK's 60 s timeout.
 *
 * Target: median sweep time over the large fleet at most 2x the small one's. Also printed: Cosmos requests per
 * sweep, as the server received them and as the sweep counted them.
 */
import { Container, JSONObject, OperationInput } from '@azure/cosmos';
import path from 'node:path';
import { TWIN_PROPERTIES } from '../shared/catalog';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { flagStaleProperties } from '../shared/flagStaleProperties';
import { DeviceProperty, TwinDocument, newTwin, withDerivedFields } from '../shared/twin';
import { EMULATOR_KEY, startCosmosServer } from '../local/cosmosServer';
import { parseFlags } from '../local/flags';
import { fmt, median } from './stats';

const GRACE = 93;
const PMAX = 21_600;
/** Seeding: bulk calls in flight at once, and operations per bulk call (the SDK splits them into batches of 100). */
const SEED_CONCURRENCY = 4;
const SEED_CHUNK = 2000;
const T0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
/** The sweep's clock: just past the due twins' staleAt, long before the others'. */
const SWEEP_AT = at(PMAX + GRACE + 1);

/** A registered twin with every catalog property notified at `updatedAt` seconds. */
function fleetTwin(deviceId: string, updatedAt: number): TwinDocument {
  const deviceProperties: Record<string, DeviceProperty> = {};
  for (const entry of TWIN_PROPERTIES) {
    deviceProperties[entry.name] = {
      value: entry.type === 'string' ? `${entry.name}-value` : 42,
      lastUpdatedTime: at(updatedAt),
      source: 'notify',
      pmin: 300,
      pmax: PMAX,
      observedSince: at(0),
      supported: true,
      stale: false,
    };
  }
  const twin = newTwin(deviceId, { tags: { site: `site-${deviceId.length % 7}` } }, at(0));
  return withDerivedFields(
    {
      ...twin,
      connection: { state: 'connected', since: at(0), lastActivityTime: at(updatedAt), lifetime: 86_400 },
      deviceProperties,
    },
    GRACE,
  );
}

const dueId = (i: number) => `due-${String(i).padStart(5, '0')}`;
const freshId = (i: number) => `dev-${String(i).padStart(6, '0')}`;

async function seed(container: Container, fleet: number, due: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < fleet) {
      const first = next;
      next = Math.min(fleet, next + SEED_CHUNK);
      const operations: OperationInput[] = [];
      for (let i = first; i < next; i++) {
        // The due twins were last notified at 0; the others an hour later, so they are due an hour after the sweep.
        const twin = i < due ? fleetTwin(dueId(i), 0) : fleetTwin(freshId(i), 3600);
        operations.push({ operationType: 'Create', partitionKey: twin.deviceId, resourceBody: toJson(twin) });
      }
      await createAll(container, operations);
    }
  };
  await Promise.all(Array.from({ length: SEED_CONCURRENCY }, worker));
}

function toJson(twin: TwinDocument): JSONObject {
  return JSON.parse(JSON.stringify(twin)) as JSONObject;
}

/** Bulk creates; operations that failed in transit are tried again (a 409 then means the first try landed). */
async function createAll(container: Container, operations: OperationInput[]): Promise<void> {
  let pending = operations;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const results = await container.items.executeBulkOperations(pending);
    const failed = results.filter((result) => {
      const status: unknown = result.response?.statusCode ?? result.error?.code;
      return !(typeof status === 'number' && (status < 300 || status === 409));
    });
    if (failed.length > 0 && attempt === 3) {
      throw new Error(`Seeding failed: ${failed[0].error?.message ?? failed[0].response?.statusCode}`);
    }
    pending = failed.map((result) => result.operationInput);
  }
}

/** Puts the due twins back as they were before a sweep flagged them. */
async function resetDue(container: Container, due: number): Promise<void> {
  await Promise.all(Array.from({ length: due }, (_, i) => container.items.upsert(fleetTwin(dueId(i), 0))));
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { small: '1000', large: '100000', due: '100', rounds: '5' });
  const [small, large, due, rounds] = [flags.small, flags.large, flags.due, flags.rounds].map(Number);
  const root = path.resolve(__dirname, '..', '..');
  const cosmos = await startCosmosServer({ port: 0, certDir: path.join(root, '.local', 'certs') });
  let serverRequests = 0;
  cosmos.server.on('request', () => serverRequests++);
  const endpoint = cosmos.endpoint;
  const certificate = { certPath: cosmos.certPath };
  const client = createCosmosClient({
    endpoint,
    databaseName: 'bench',
    key: EMULATOR_KEY,
    trustedCertificatePath: certificate.certPath,
  });
  try {
    const fleets = [
      { name: `${small.toLocaleString('en')} twins`, size: small, times: [] as number[] },
      { name: `${large.toLocaleString('en')} twins`, size: large, times: [] as number[] },
    ].map((fleet) => ({ ...fleet, container: undefined as unknown as Container, served: 0, counted: 0 }));
    for (const fleet of fleets) {
      const started = performance.now();
      fleet.container = await openTwinsContainer(client, `sweep-${fleet.size}`);
      await seed(fleet.container, fleet.size, due);
      console.log(`seeded ${fleet.name} (${due} due) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }

    const sweep = async (fleet: (typeof fleets)[number], record: boolean) => {
      await resetDue(fleet.container, due);
      const store = new CosmosTwinStore(fleet.container, GRACE);
      const before = serverRequests;
      const started = performance.now();
      const summary = await flagStaleProperties(store, { now: SWEEP_AT, graceSeconds: GRACE });
      const elapsed = performance.now() - started;
      if (summary.flaggedTwins !== due || summary.dueTwins !== due || summary.failures.length > 0) {
        throw new Error(
          `${fleet.name}: expected ${due} due and flagged, got ${JSON.stringify({ ...summary, events: [] })}`,
        );
      }
      if (record) {
        fleet.times.push(elapsed);
        fleet.served = serverRequests - before;
        fleet.counted = summary.requests;
      }
    };

    for (const fleet of fleets) await sweep(fleet, false); // warm-up: JIT, connections, query plan cache
    for (let round = 0; round < rounds; round++) {
      for (const fleet of round % 2 === 0 ? fleets : [...fleets].reverse()) await sweep(fleet, true);
    }

    const [smallFleet, largeFleet] = fleets;
    const ratio = median(largeFleet.times) / median(smallFleet.times);
    console.log(`\nOne staleness sweep, ${due} twins due, ${rounds} rounds (median, min-max):`);
    for (const fleet of fleets) {
      console.log(
        `  ${fleet.name.padEnd(16)} ${fmt(median(fleet.times))}  (${fmt(Math.min(...fleet.times))} - ` +
          `${fmt(Math.max(...fleet.times))})   Cosmos requests per sweep: ${fleet.served} received by the server, ` +
          `${fleet.counted} counted by the sweep`,
      );
    }
    console.log(`  ratio ${largeFleet.name} / ${smallFleet.name}: ${ratio.toFixed(2)} (target <= 2)`);
    process.exitCode = ratio <= 2 ? 0 : 1;
  } finally {
    client.dispose();
    await cosmos.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
