/**
 * The DeviceTwin sample, against the HTTP API of a running stack (`npm start`):
 *
 *   npm run sample -- sim-001            (API at LWM2M_API, default http://127.0.0.1:7071/api)
 *
 * Prints every device property of the twin with its lastUpdatedTime (shallow read), deep-reads batteryLevel three
 * times, deep-writes timezone (the twin keeps the old value: the device is its authority), deep-reads timezone to
 * show the device changed, and then shows the twin following the device's next notify.
 */
import { validateDeviceId } from '../shared/deviceId';
import { JobView } from '../shared/job';

const API = (process.env.LWM2M_API ?? 'http://127.0.0.1:7071/api').replace(/\/+$/, '');
/** How long the sample waits for a job, and for the twin to catch up, ms. */
const JOB_WAIT_MS = 60_000;
const CATCH_UP_WAIT_MS = 120_000;
const ZONES = ['Europe/Paris', 'Asia/Tokyo', 'America/New_York'];

interface TwinProperty {
  value?: unknown;
  lastUpdatedTime?: string;
  source?: string;
  stale?: boolean;
}
interface Twin {
  connection: { state: string };
  deviceProperties: Record<string, TwinProperty>;
}

async function call(method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  let response: Response;
  try {
    response = await fetch(`${API}${route}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new Error(`Cannot reach the API at ${API} (${(error as Error).message}); is the stack up (npm start)?`);
  }
  const text = await response.text();
  const json: unknown = text ? JSON.parse(text) : undefined;
  if (response.status >= 400) {
    const problem = json as { code?: string; detail?: string } | undefined;
    throw new Error(`${method} ${route}: ${response.status} ${problem?.code ?? ''} ${problem?.detail ?? text}`);
  }
  return { status: response.status, json };
}

async function readTwin(deviceId: string): Promise<Twin> {
  return (await call('GET', `/twins/${deviceId}`)).json as Twin;
}

/** Submits a job and waits for it to end; returns the ended job and how long it took. */
async function runJob(request: Record<string, unknown>): Promise<{ job: JobView; ms: number }> {
  const started = performance.now();
  const submitted = (await call('POST', '/jobs', request)).json as JobView;
  const deadline = Date.now() + JOB_WAIT_MS;
  for (;;) {
    const job = (await call('GET', `/jobs/${submitted.jobId}`)).json as JobView;
    if (job.status !== 'queued' && job.status !== 'running') {
      if (job.status !== 'completed') {
        throw new Error(`Job ${job.jobId} ${job.status}: ${job.error?.code ?? ''} ${job.error?.message ?? ''}`);
      }
      return { job, ms: performance.now() - started };
    }
    if (Date.now() > deadline) throw new Error(`Job ${job.jobId} still ${job.status} after ${JOB_WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function printProperties(twin: Twin): void {
  for (const [name, property] of Object.entries(twin.deviceProperties)) {
    const value = property.value === undefined ? '(not reported yet)' : JSON.stringify(property.value);
    const when = property.lastUpdatedTime ?? '-';
    const flags = `${property.source ?? ''}${property.stale ? ', stale' : ''}`;
    console.log(`  ${name.padEnd(24)} ${value.padEnd(28)} ${when}  ${flags}`);
  }
}

async function main(): Promise<void> {
  const deviceId = process.argv[2];
  if (!deviceId) throw new Error('Usage: npm run sample -- <deviceId>   (for example sim-001 on `npm start`)');
  validateDeviceId(deviceId);

  const twin = await readTwin(deviceId);
  console.log(`Twin of ${deviceId} (connection: ${twin.connection.state}), device properties (shallow read):`);
  printProperties(twin);

  console.log('\nDeep-reading batteryLevel three times (each a job: queue -> connector -> device):');
  for (let i = 1; i <= 3; i++) {
    const { job, ms } = await runJob({ type: 'readDeviceProperty', deviceId, property: 'batteryLevel' });
    console.log(
      `  #${i} batteryLevel = ${JSON.stringify(job.result?.value)} at ${job.result?.lastUpdatedTime} (${ms.toFixed(0)} ms)`,
    );
  }

  const before = twin.deviceProperties.timezone?.value;
  const timezone = ZONES.find((zone) => zone !== before) as string;
  console.log(`\nDeep-writing timezone = ${timezone} (the twin says ${JSON.stringify(before)}):`);
  const write = await runJob({ type: 'writeDeviceProperty', deviceId, property: 'timezone', value: timezone });
  console.log(`  job ${write.job.jobId} completed (${write.ms.toFixed(0)} ms)`);
  const shallow = (await readTwin(deviceId)).deviceProperties.timezone;
  const why =
    shallow?.value === timezone
      ? "the device's notify of the change already arrived"
      : 'a deep write leaves the twin alone; it follows the device';
  console.log(
    `  twin right after the write: timezone = ${JSON.stringify(shallow?.value)} ` +
      `(${shallow?.source} at ${shallow?.lastUpdatedTime}: ${why})`,
  );

  const read = await runJob({ type: 'readDeviceProperty', deviceId, property: 'timezone' });
  console.log(
    `  deep read: the device says timezone = ${JSON.stringify(read.job.result?.value)} ` +
      '(a deep read refreshes that one property in the twin, source deepRead)',
  );

  console.log(
    '\nWaiting for the next notify of timezone (a change is notified after pmin, and every value at pmax)...',
  );
  const waitStarted = performance.now();
  const deadline = Date.now() + CATCH_UP_WAIT_MS;
  for (;;) {
    const property = (await readTwin(deviceId)).deviceProperties.timezone;
    if (property?.value === timezone && property.source === 'notify') {
      const waited = ((performance.now() - waitStarted) / 1000).toFixed(1);
      console.log(
        `  twin: timezone = ${JSON.stringify(property.value)} at ${property.lastUpdatedTime} (${property.source}), after ${waited} s`,
      );
      break;
    }
    if (Date.now() > deadline) throw new Error(`The twin did not show ${timezone} within ${CATCH_UP_WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
