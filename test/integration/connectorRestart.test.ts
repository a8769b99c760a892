/**
 * The connector survives a crash: kill -9, start again, and every device it held is still registered (no
 * re-registration), its twin connected and fresh, and a job submitted during the outage completes after it.
 * Deprovisioning ends a registration at once. Real UDP, the real local stack.
 */
import { JobView } from '../../shared/job';
import { SimulatedFleet, startSimulatedFleet } from '../../simulator';
import {
  ConnectorProcessSettings,
  connectorHealth,
  dedicatedConnectorSettings,
  startConnectorProcess,
  stopProcess,
} from './connectorProcess';
import { api, uniqueDeviceId, waitFor } from './stackClient';

jest.setTimeout(120_000);

interface TwinBody {
  connection: { state: string; registrationId?: string; connectorUrl?: string };
  deviceProperties: Record<string, { value?: unknown; source?: string; lastUpdatedTime?: string }>;
}

async function twin(deviceId: string): Promise<TwinBody | undefined> {
  const response = await api('GET', `/twins/${deviceId}`);
  return response.status === 200 ? (response.body as TwinBody) : undefined;
}

async function startDevices(
  connector: ConnectorProcessSettings,
  count: number,
): Promise<{ fleet: SimulatedFleet; ids: string[]; registrationIds: string[] }> {
  const prefix = `${uniqueDeviceId('restart')}-`;
  const ids = Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(3, '0')}`);
  for (const id of ids)
    expect((await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } })).status).toBe(201);
  const fleet = await startSimulatedFleet({
    count,
    prefix,
    server: { host: '127.0.0.1', port: connector.coapPort },
    changeIntervalMs: 0,
    pmin: 0,
    pmax: 3600,
  });
  await fleet.allRegistered();
  const registrationIds: string[] = [];
  for (const id of ids) {
    const body = await waitFor(`${id} connected with a battery level`, async () => {
      const current = await twin(id);
      const ready =
        current?.connection.state === 'connected' &&
        current.connection.connectorUrl === connector.connectorUrl &&
        current.deviceProperties.batteryLevel?.value !== undefined;
      return ready ? current : undefined;
    });
    registrationIds.push(body.connection.registrationId as string);
  }
  return { fleet, ids, registrationIds };
}

describe('connector restart', () => {
  it('after kill -9 and a start, devices stay registered, twins connected and fresh, and an outage job completes', async () => {
    const settings = await dedicatedConnectorSettings(uniqueDeviceId('connector-restart'));
    let connector = await startConnectorProcess(settings);
    const { fleet, ids, registrationIds } = await startDevices(settings, 4);
    // A Register right after provisioning may be refused once (the connector learns credentials within a second).
    const before = fleet.counters();
    try {
      await stopProcess(connector, 'SIGKILL');
      const submitted = await api('POST', '/jobs', {
        body: { type: 'readDeviceProperty', deviceId: ids[0], property: 'memoryFree' },
      });
      expect(submitted.status).toBe(202);
      const jobId = (submitted.body as JobView).jobId;
      await waitFor('a delivery that met the stopped connector', async () => {
        const current = (await api('GET', `/jobs/${jobId}`)).body as JobView;
        return current.lastError ? current : undefined;
      });

      connector = await startConnectorProcess(settings);
      const health = await connectorHealth(settings);
      expect(health).toMatchObject({ registrations: ids.length, restored: { registrations: ids.length, expired: 0 } });

      // Every device notifies a new value on its old observation (same token): the twin takes it.
      fleet.devices.forEach((device, i) => device.setValue('/3/0/9', 50 + i));
      for (const [i, id] of ids.entries()) {
        const body = await waitFor(`${id}'s notify after the restart`, async () => {
          const current = await twin(id);
          return current?.deviceProperties.batteryLevel?.value === 50 + i ? current : undefined;
        });
        expect(body.connection).toMatchObject({ state: 'connected', registrationId: registrationIds[i] });
        expect(body.deviceProperties.batteryLevel.source).toBe('notify');
      }
      const done = await waitFor(
        'the outage job to end',
        async () => {
          const current = (await api('GET', `/jobs/${jobId}`)).body as JobView;
          return ['completed', 'failed'].includes(current.status) ? current : undefined;
        },
        60_000,
      );
      expect(done).toMatchObject({ status: 'completed', result: { value: expect.any(Number) } });
      // Nobody registered again: the first Register of each device is the only one.
      expect(fleet.counters()).toMatchObject({
        registrations: ids.length,
        registrationFailures: before.registrationFailures,
      });
    } finally {
      await fleet.stop({ deregister: false });
      await stopProcess(connector, 'SIGTERM');
    }
  });

  it('deprovisioning ends the registration at once; after provisioning again, the old one writes nothing', async () => {
    const settings = await dedicatedConnectorSettings(uniqueDeviceId('connector-deprovision'));
    const connector = await startConnectorProcess(settings);
    const { fleet, ids } = await startDevices(settings, 1);
    const [deviceId] = ids;
    try {
      expect((await api('DELETE', `/devices/${deviceId}`)).status).toBe(204);
      expect(await connectorHealth(settings)).toMatchObject({ registrations: 0 });
      expect((await api('PUT', `/devices/${deviceId}`, { body: { security: { mode: 'none' } } })).status).toBe(201);

      // The old registration's observation is gone: its notify gets RST and nothing reaches the new twin.
      const resetsBefore = ((await connectorHealth(settings)).coap as { resetsSent: number }).resetsSent;
      fleet.devices[0].setValue('/3/0/9', 3);
      await waitFor('the RST to the old observation', async () => {
        const coap = (await connectorHealth(settings)).coap as { resetsSent: number };
        return coap.resetsSent > resetsBefore ? true : undefined;
      });
      const fresh = await twin(deviceId);
      expect(fresh?.connection.state).toBe('never');
      expect(fresh?.deviceProperties).toEqual({});
    } finally {
      await fleet.stop({ deregister: false });
      await stopProcess(connector, 'SIGTERM');
    }
  });
});
