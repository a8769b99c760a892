/**
 * Deep reads as jobs versus a direct CoAP GET to the same simulated device, in the same run.
 *
 * - Round trip, one at a time on one device: `POST /api/jobs` (readDeviceProperty batteryLevel), then
 *   `GET /api/jobs/{jobId}` every `--poll` ms until the job completed (HTTP -> Cosmos -> Service Bus -> session
 *   trigger -> connector -> CoAP -> twin patch -> job record), against a CoAP GET /3/0/9 from a plain `coap` client to
 *   the device's own port. Rounds alternate between the two paths so drift on a shared machine hits both alike.
 * - Throughput: `--jobs` read jobs spread over 100 devices, submitted `--concurrency` at a time; jobs per second from
 *   the first job's creation to the last job's end (from the job records, so polling does not count).
 *
 *   npm run build && node dist/bench/deepRead.js [--samples 100] [--rounds 3] [--jobs 1000] [--concurrency 32] [--poll 5]
 */
import { Agent, IncomingMessage, request as coapRequest } from 'coap';
import path from 'node:path';
import { parseFlags } from '../local/flags';
import { freePorts, startLocalStack } from '../local/localStack';
import { loadCosmosConfig } from '../shared/config';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosJobStore, openJobsContainer } from '../shared/cosmosJobStore';
import { JobDocument, JobView } from '../shared/job';
import { SimulatedDevice, startSimulatedFleet } from '../simulator';
import { fmt, measureConcurrent, median, percentile } from './stats';

const DEVICES = 100;

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), {
    samples: '100',
    rounds: '3',
    jobs: '1000',
    concurrency: '32',
    poll: '5',
  });
  const samples = Number(flags.samples);
  const rounds = Number(flags.rounds);
  const totalJobs = Number(flags.jobs);
  const concurrency = Number(flags.concurrency);
  const pollMs = Number(flags.poll);
  const root = path.resolve(__dirname, '..', '..');
  const [cosmos, blob, queue, table, serviceBus, functions, coapPort, coaps, connectorApi] = await freePorts(9);
  const stack = await startLocalStack({
    root,
    // Every port its own (coaps too), so the benchmark runs beside `npm start`.
    ports: { cosmos, blob, queue, table, serviceBus, functions, coap: coapPort, coaps, connectorApi },
    dataDir: path.join(root, '.local', 'bench-stack'),
    output: 'files',
    pieces: ['cosmos', 'azurite', 'serviceBus', 'connector', 'functions'],
    log: () => undefined,
  });
  const api = stack.apiBaseUrl;
  const prefix = 'bench-';
  const ids = Array.from({ length: DEVICES }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`);
  for (const id of ids) {
    const response = await fetch(`${api}/devices/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ security: { mode: 'none' } }),
    });
    if (response.status >= 300) throw new Error(`provisioning ${id}: ${response.status}`);
  }
  // Quiet devices: values change only when read, notifies only after pmax (an hour), so reads are all that runs.
  const fleet = await startSimulatedFleet({
    count: DEVICES,
    prefix,
    server: { host: '127.0.0.1', port: coapPort },
    changeIntervalMs: 0,
    pmin: 0,
    pmax: 3600,
  });
  const agent = new Agent({ type: 'udp4' });
  const config = loadCosmosConfig(stack.settings);
  const cosmosClient = createCosmosClient(config);
  try {
    await fleet.allRegistered();
    for (const id of ids) await waitConnected(api, id);
    const device = fleet.devices[0];

    /** Per measured job: created -> started (API, queue, trigger) and started -> ended (device, twin, record), ms. */
    const phases: { queued: number; running: number }[] = [];
    const viaJob = async () => {
      const job = await submitRead(api, device.endpoint);
      for (;;) {
        const response = await fetch(`${api}/jobs/${job.jobId}`);
        const current = (await response.json()) as JobView;
        if (current.status === 'completed') {
          const [created, started, ended] = [current.createdTime, current.startedTime, current.endTime].map((t) =>
            Date.parse(t as string),
          );
          phases.push({ queued: started - created, running: ended - started });
          return;
        }
        if (current.status !== 'queued' && current.status !== 'running') {
          throw new Error(`job ${job.jobId} ${current.status}: ${JSON.stringify(current.error)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
    };
    const direct = () => coapGet(agent, device, '/3/0/9');

    // Warm-up: connection pools, JIT, the host's lazy clients, the session receivers.
    await measureConcurrent(20, 1, direct);
    await measureConcurrent(10, 1, viaJob);

    const directSamples: number[] = [];
    const jobSamples: number[] = [];
    phases.length = 0;
    for (let round = 0; round < rounds; round++) {
      directSamples.push(...(await measureConcurrent(samples, 1, direct)).latencies);
      jobSamples.push(...(await measureConcurrent(samples, 1, viaJob)).latencies);
    }

    const submitted: JobView[] = [];
    const submitting = await measureConcurrent(totalJobs, concurrency, async (i) => {
      submitted.push(await submitRead(api, ids[i % DEVICES]));
    });
    const store = new CosmosJobStore(await openJobsContainer(cosmosClient, config.databaseName));
    const ended = await waitEnded(store, submitted);
    const failed = ended.filter((job) => job.status !== 'completed');
    const firstCreated = Math.min(...ended.map((job) => Date.parse(job.createdTime)));
    const lastEnded = Math.max(...ended.map((job) => Date.parse(job.endTime as string)));
    const jobsPerSecond = ended.length / ((lastEnded - firstCreated) / 1000);
    const directThroughput = await measureConcurrent(totalJobs, concurrency, (i) =>
      coapGet(agent, fleet.devices[i % DEVICES], '/3/0/9'),
    );

    const row = (name: string, values: number[]) =>
      `${name.padEnd(44)} median ${fmt(median(values)).padStart(10)}   p99 ${fmt(percentile(values, 99)).padStart(10)}`;
    console.log(`Deep read round trip, one at a time on ${device.endpoint}, ${rounds} x ${samples} samples per path`);
    console.log(row('baseline: CoAP GET /3/0/9 to the device', directSamples));
    console.log(row(`job: POST /api/jobs, poll every ${pollMs} ms`, jobSamples));
    console.log(
      `  job phases (from its record): created -> started median ${fmt(median(phases.map((p) => p.queued)))}, ` +
        `started -> ended median ${fmt(median(phases.map((p) => p.running)))}`,
    );
    console.log(
      `overhead ratio (job / direct): median ${(median(jobSamples) / median(directSamples)).toFixed(1)}x, ` +
        `p99 ${(percentile(jobSamples, 99) / percentile(directSamples, 99)).toFixed(1)}x`,
    );
    console.log(
      `Throughput across ${DEVICES} devices: ${totalJobs} read jobs (submitted ${concurrency} at a time in ` +
        `${submitting.seconds.toFixed(1)} s): ${jobsPerSecond.toFixed(1)} jobs/s from first created to last ended` +
        `${failed.length ? `, ${failed.length} not completed` : ''}; direct CoAP GETs at the same concurrency: ` +
        `${(totalJobs / directThroughput.seconds).toFixed(0)} req/s`,
    );
  } finally {
    agent.close();
    cosmosClient.dispose();
    await fleet.stop();
    await stack.stop();
  }
}

async function submitRead(api: string, deviceId: string): Promise<JobView> {
  const response = await fetch(`${api}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel' }),
  });
  if (response.status !== 202)
    throw new Error(`POST /jobs for ${deviceId}: ${response.status} ${await response.text()}`);
  return (await response.json()) as JobView;
}

async function waitConnected(api: string, deviceId: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const twin = (await (await fetch(`${api}/twins/${deviceId}`)).json()) as { connection?: { state?: string } };
    if (twin.connection?.state === 'connected') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${deviceId} did not connect within 60 s`);
}

/** Reads the job records (not the HTTP API) once a second until every job ended; 10 minutes at most. */
async function waitEnded(store: CosmosJobStore, jobs: readonly JobView[]): Promise<JobDocument[]> {
  const ended = new Map<string, JobDocument>();
  const deadline = Date.now() + 600_000;
  while (ended.size < jobs.length) {
    if (Date.now() > deadline) throw new Error(`${jobs.length - ended.size} jobs did not end within 10 minutes`);
    const pending = jobs.filter((job) => !ended.has(job.jobId));
    await measureConcurrent(pending.length, 16, async (i) => {
      const record = await store.read(pending[i].deviceId, pending[i].jobId);
      if (record && ['completed', 'failed', 'cancelled'].includes(record.status)) ended.set(record.id, record);
    });
    if (ended.size < jobs.length) await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return [...ended.values()];
}

function coapGet(agent: Agent, device: SimulatedDevice, pathname: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = coapRequest({ hostname: '127.0.0.1', port: device.port, pathname, method: 'GET', agent });
    request.on('response', (response: IncomingMessage) => {
      if (!String(response.code).startsWith('2')) reject(new Error(`CoAP GET ${pathname}: ${response.code}`));
      else resolve();
      response.resume();
    });
    request.on('error', reject);
    request.end();
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
