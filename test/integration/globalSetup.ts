/**
 * Starts one local stack for all integration tests, on free ports (so tests run while `npm start` is up),
 * from the built `dist/` (`npm test` builds first). Tests find it through LWM2M_TEST_* variables.
 */
import path from 'node:path';
import { freePorts, startLocalStack } from '../../local/localStack';

export default async function globalSetup(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const [cosmos, blob, queue, table, serviceBus, functions, coap, coaps, connectorApi] = await freePorts(9);
  const stack = await startLocalStack({
    root,
    ports: { cosmos, blob, queue, table, serviceBus, functions, coap, coaps, connectorApi },
    dataDir: path.join(root, '.local', 'test-stack'),
    output: 'files',
    simulatedDevices: 0,
    observation: { pmin: 1, pmax: 20 },
    // A sweep every 5 s with a 3 s grace, so staleness shows within seconds of pmax.
    staleness: { schedule: '*/5 * * * * *', graceSeconds: 3 },
    // The unsent/waiting-job sweep every 5 s, so a waiting job past its ttlSeconds fails DeviceAsleep within seconds.
    settings: { Jobs__queuedSweepSchedule: '*/5 * * * * *' },
    log: () => undefined,
  });
  (globalThis as { __LWM2M_STACK__?: unknown }).__LWM2M_STACK__ = stack;
  process.env.LWM2M_TEST_API = stack.apiBaseUrl;
  process.env.LWM2M_TEST_CONNECTOR_API = stack.connectorApiUrl;
  process.env.LWM2M_TEST_COAP_PORT = String(stack.ports.coap);
  process.env.LWM2M_TEST_COAPS_PORT = String(stack.ports.coaps);
  process.env.LWM2M_TEST_SETTINGS = JSON.stringify(stack.settings);
}
