/**
 * A dedicated connector process (`node dist/connector/main.js`) against the shared test stack's Cosmos and Service
 * Bus, on its own ports and instance id, for tests that kill and restart it.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { freePorts } from '../../local/localStack';

export interface ConnectorProcessSettings {
  env: NodeJS.ProcessEnv;
  connectorUrl: string;
  coapPort: number;
}

/** Settings for a dedicated connector named `instanceId` (its registrations are its own). */
export async function dedicatedConnectorSettings(instanceId: string): Promise<ConnectorProcessSettings> {
  const [apiPort, coapPort, coapsPort] = await freePorts(3);
  const connectorUrl = `http://127.0.0.1:${apiPort}`;
  const stackSettings: Record<string, string> = JSON.parse(process.env.LWM2M_TEST_SETTINGS ?? '{}');
  return {
    connectorUrl,
    coapPort,
    env: {
      ...process.env,
      ...stackSettings,
      Connector__instanceId: instanceId,
      Connector__coapPort: String(coapPort),
      Connector__coapsPort: String(coapsPort),
      Connector__apiPort: String(apiPort),
      Connector__apiUrl: connectorUrl,
    },
  };
}

/** Starts the connector and waits for its health endpoint. */
export async function startConnectorProcess(settings: ConnectorProcessSettings): Promise<ChildProcess> {
  const script = path.resolve(__dirname, '..', '..', 'dist', 'connector', 'main.js');
  const child = spawn(process.execPath, [script], { env: settings.env, stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the connector exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${settings.connectorUrl}/health`)).ok) return child;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error('the dedicated connector did not become healthy within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

/** The connector's /health body. */
export async function connectorHealth(settings: ConnectorProcessSettings): Promise<Record<string, unknown>> {
  return (await (await fetch(`${settings.connectorUrl}/health`)).json()) as Record<string, unknown>;
}
