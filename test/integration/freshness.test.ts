/**
 * Freshness on the local stack: the timer sweep flags what a paused device stopped notifying and announces it on
 * the `twin-events` topic, as the connector announces connects, disconnects and values fresh again; `max-age` reads
 * go through to the device, or answer within the bound, marked, when the device is unreachable.
 */
import { ServiceBusClient, ServiceBusReceiver } from '@azure/service-bus';
import { EVENTS_TOPIC } from '../../shared/constants';
import { TwinEvent } from '../../shared/twinEvents';
import { SimulatedFleet, startSimulatedFleet } from '../../simulator';
import { api, uniqueDeviceId, waitFor } from './stackClient';

const settings = (): Record<string, string> => JSON.parse(process.env.LWM2M_TEST_SETTINGS ?? '{}');
/** The stack's observation pmax and staleness grace (seconds), as its Functions host and connector got them. */
const PMAX = Number(settings().Observe__device__pmax ?? 21_600);
const GRACE = Number(settings().Staleness__graceSeconds ?? 93);
/** Longest gap between two sweeps: the stack's schedule when it fires every N seconds, else the default minute. */
const SWEEP_PERIOD = Number(/^\*\/(\d+) /.exec(settings().Staleness__schedule ?? '')?.[1] ?? 60);
const SLACK_S = 10;

jest.setTimeout((PMAX + GRACE + SWEEP_PERIOD + 3 * SLACK_S) * 1000 + 60_000);

interface PropertyBody {
  value?: unknown;
  lastUpdatedTime?: string;
  source?: string;
  stale: boolean;
  staleSince?: string;
  staleReason?: string;
  nextNotifyDue?: string;
  refreshed?: boolean;
  refreshError?: { code: string; detail: string };
}

async function property(deviceId: string, name: string): Promise<PropertyBody> {
  const response = await api('GET', `/twins/${deviceId}/deviceProperties/${name}`);
  expect(response.status).toBe(200);
  return response.body as PropertyBody;
}

describe('freshness on the local stack', () => {
  let fleet: SimulatedFleet;
  let ids: string[];
  let client: ServiceBusClient;
  let receiver: ServiceBusReceiver;
  const events: TwinEvent[] = [];

  beforeAll(async () => {
    client = new ServiceBusClient(settings().ServiceBusConnection);
    receiver = client.createReceiver(EVENTS_TOPIC, 'automation', { receiveMode: 'receiveAndDelete' });
    receiver.subscribe({
      processMessage: async (message) => void events.push(message.body as TwinEvent),
      processError: async () => undefined,
    });
    const prefix = `${uniqueDeviceId('fresh')}-`;
    ids = [`${prefix}001`, `${prefix}002`];
    for (const id of ids)
      expect((await api('PUT', `/devices/${id}`, { body: { security: { mode: 'none' } } })).status).toBeLessThan(300);
    // Devices follow the connector's write-attributes (pmin/pmax of the stack); values change only when told.
    fleet = await startSimulatedFleet({
      count: 2,
      prefix,
      server: { host: '127.0.0.1', port: Number(process.env.LWM2M_TEST_COAP_PORT) },
      changeIntervalMs: 0,
    });
    await fleet.allRegistered();
    for (const id of ids) {
      await waitFor(
        `${id} to report its manufacturer and battery level`,
        async () => {
          const twin = (await api('GET', `/twins/${id}`)).body as {
            connection: { state: string };
            deviceProperties: Record<string, PropertyBody>;
          };
          const { manufacturer, batteryLevel } = twin.deviceProperties;
          const ready = twin.connection.state === 'connected' && manufacturer?.value && batteryLevel?.value;
          return ready ? twin : undefined;
        },
        30_000,
      );
    }
  });

  afterAll(async () => {
    await receiver?.close();
    await client?.close();
    for (const device of fleet?.devices ?? []) device.setUnreachable(false);
    await fleet?.stop();
  });

  it('announces each device that connected on twin-events, at the time its twin says', async () => {
    for (const id of ids) {
      const twin = (await api('GET', `/twins/${id}`)).body as { connection: { since: string } };
      const event = await waitFor(
        `the deviceConnected event of ${id}`,
        async () => events.find((e) => e.deviceId === id && e.kind === 'deviceConnected'),
        15_000,
      );
      expect(event).toEqual({ deviceId: id, kind: 'deviceConnected', time: twin.connection.since });
    }
  });

  it("answers max-age with the device's current value when the twin's is older, and says so", async () => {
    const device = fleet.devices[0];
    device.pauseNotifications();
    const before = await property(ids[0], 'batteryLevel');
    const value = before.value === 42 ? 43 : 42;
    device.setValue('/3/0/9', value);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the twin's value is now more than 1 s old

    const young = await api('GET', `/twins/${ids[0]}/deviceProperties/batteryLevel`, {
      headers: { 'Cache-Control': 'max-age=3600' },
    });
    expect(young.headers.get('x-twin-source')).toBe('twin');
    expect(young.body).toMatchObject({ value: before.value });
    expect(young.body).not.toHaveProperty('refreshed');

    const old = await api('GET', `/twins/${ids[0]}/deviceProperties/batteryLevel`, {
      headers: { 'Cache-Control': 'max-age=1' },
    });
    expect(old.status).toBe(200);
    expect(old.headers.get('x-twin-source')).toBe('device');
    expect(old.body).toMatchObject({ value, source: 'deepRead', stale: false, refreshed: true });
    expect((await property(ids[0], 'batteryLevel')).value).toBe(value);

    const viaQuery = await api('GET', `/twins/${ids[0]}/deviceProperties/batteryLevel?maxAge=soon`);
    expect(viaQuery.status).toBe(400);
    expect(viaQuery.body).toMatchObject({ code: 'InvalidRequest', field: 'maxAge' });
  });

  it("answers within the bound with the twin's value, marked, when the device is unreachable", async () => {
    const device = fleet.devices[1];
    const before = await property(ids[1], 'batteryLevel');
    device.setUnreachable(true);
    const started = Date.now();
    const response = await api('GET', `/twins/${ids[1]}/deviceProperties/batteryLevel`, {
      headers: { 'Cache-Control': 'max-age=0', Prefer: 'wait=2' },
    });
    const elapsedMs = Date.now() - started;
    expect(response.status).toBe(200);
    expect(elapsedMs).toBeGreaterThanOrEqual(1900);
    expect(elapsedMs).toBeLessThan(4000);
    expect(response.headers.get('x-twin-source')).toBe('twin');
    expect(response.headers.get('preference-applied')).toBe('wait=2');
    expect(response.body).toMatchObject({
      value: before.value,
      lastUpdatedTime: before.lastUpdatedTime,
      refreshed: false,
      refreshError: { code: 'DeviceTimeout' },
    });
  });

  it('flags a property within one sweep after pmax + grace once the device stops notifying, and says so on twin-events', async () => {
    // Device 1's notifications are paused since the first test; its manufacturer was not read since registration.
    const deviceId = ids[0];
    const last = await property(deviceId, 'manufacturer');
    const staleAt = Date.parse(last.lastUpdatedTime as string) + (PMAX + GRACE) * 1000;
    expect(last.stale).toBe(false);

    const flagged = await waitFor(
      `manufacturer of ${deviceId} to be flagged stale`,
      async () => {
        const current = await property(deviceId, 'manufacturer');
        return current.stale ? current : undefined;
      },
      staleAt - Date.now() + (SWEEP_PERIOD + SLACK_S) * 1000,
    );
    expect(Date.now()).toBeGreaterThan(staleAt);
    expect(flagged).toMatchObject({
      value: last.value,
      lastUpdatedTime: last.lastUpdatedTime,
      stale: true,
      staleSince: new Date(staleAt).toISOString(),
      staleReason: 'missedNotify',
    });

    const event = await waitFor(
      'the propertyStale event on twin-events',
      async () =>
        events.find((e) => e.deviceId === deviceId && e.kind === 'propertyStale' && e.property === 'manufacturer'),
      15_000,
    );
    expect(event).toEqual({
      deviceId,
      kind: 'propertyStale',
      property: 'manufacturer',
      time: new Date(staleAt).toISOString(),
      reason: 'missedNotify',
    });

    // Notifications resume: the next one (at the latest after pmax) clears the flag, and that is an event too.
    fleet.devices[0].resumeNotifications();
    const fresh = await waitFor(
      'the propertyFresh event on twin-events',
      async () =>
        events.find((e) => e.deviceId === deviceId && e.kind === 'propertyFresh' && e.property === 'manufacturer'),
      (PMAX + SLACK_S) * 1000,
    );
    const cleared = await property(deviceId, 'manufacturer');
    expect(cleared).toMatchObject({ stale: false, value: last.value });
    expect(fresh).toEqual({ deviceId, kind: 'propertyFresh', property: 'manufacturer', time: cleared.lastUpdatedTime });
  });

  it('announces a device that de-registers on twin-events', async () => {
    const device = fleet.devices[1];
    device.setUnreachable(false);
    await device.stop();
    const twin = await waitFor(
      `the twin of ${ids[1]} to say disconnected`,
      async () => {
        const body = (await api('GET', `/twins/${ids[1]}`)).body as { connection: { state: string; since: string } };
        return body.connection.state === 'disconnected' ? body : undefined;
      },
      15_000,
    );
    const event = await waitFor(
      `the deviceDisconnected event of ${ids[1]}`,
      async () => events.find((e) => e.deviceId === ids[1] && e.kind === 'deviceDisconnected'),
      15_000,
    );
    expect(event).toEqual({ deviceId: ids[1], kind: 'deviceDisconnected', time: twin.connection.since });
  });
});
