/**
 * The internal HTTP API over real HTTP, against a device registered over real UDP.
 */
import { Code } from '../../connector/coap/coapMessage';
import { ConnectorHarness, TEST_API_KEY } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';

describe('connector internal API', () => {
  const harness = new ConnectorHarness();
  let device: TestDevice;

  const call = (
    method: string,
    path: string,
    init: { key?: string | null; body?: unknown; timeoutMs?: number } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (init.key !== null) headers['x-connector-key'] = init.key ?? TEST_API_KEY;
    if (init.timeoutMs !== undefined) headers['x-timeout-ms'] = String(init.timeoutMs);
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${harness.connector.apiUrl}${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    });
  };

  beforeAll(async () => {
    await harness.start({ deviceTimeoutSeconds: 3 }, 'api-test');
    await harness.provision('api-dev');
    await harness.provision('api-idle');
    device = await TestDevice.start(harness.server);
    device.setText('/3/0/9', 91);
    device.setText('/3/0/15', 'Europe/Paris');
    const { response } = await device.register('api-dev', { links: '</3/0>' });
    expect(response.code).toBe(Code.CREATED);
    await device.waitForObservations(['/3/0/9', '/3/0/15']);
  });
  afterAll(async () => {
    await device.close();
    await harness.close();
  });

  it('serves health without a key and refuses everything else without the right key (401 problem+json)', async () => {
    const health = await call('GET', '/health', { key: null });
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', instanceId: 'connector-test', registrations: 1 });
    for (const key of [null, 'wrong-key', '']) {
      const response = await call('GET', '/devices/api-dev/properties/batteryLevel', { key });
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(await response.json()).toMatchObject({ code: 'Unauthorized', status: 401 });
    }
  });

  it('reads a property from the device', async () => {
    device.setText('/3/0/9', 64);
    const response = await call('GET', '/devices/api-dev/properties/batteryLevel');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { time: string };
    expect(body).toMatchObject({ deviceId: 'api-dev', property: 'batteryLevel', value: 64 });
    expect(Date.parse(body.time)).toBeGreaterThan(0);
  });

  it('writes a property on the device (text/plain) and validates the value first', async () => {
    const response = await call('PUT', '/devices/api-dev/properties/timezone', { body: { value: 'Asia/Tokyo' } });
    expect(response.status).toBe(204);
    const put = device.received.filter((r) => r.path === '/3/0/15' && r.message.code === Code.PUT).pop();
    expect(put?.message.payload.toString()).toBe('Asia/Tokyo');

    const invalid = await call('PUT', '/devices/api-dev/properties/timezone', { body: { value: 'Mars/Olympus' } });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ code: 'InvalidValue', field: 'value' });
    const notJson = await call('PUT', '/devices/api-dev/properties/timezone', { body: '{"value":' });
    expect(await notJson.json()).toMatchObject({ code: 'InvalidJson', status: 400 });
    const noValue = await call('PUT', '/devices/api-dev/properties/timezone', { body: { zone: 'UTC' } });
    expect(await noValue.json()).toMatchObject({ code: 'InvalidRequest', field: 'value' });
    const readOnly = await call('PUT', '/devices/api-dev/properties/batteryLevel', { body: { value: 5 } });
    expect(await readOnly.json()).toMatchObject({ code: 'PropertyNotWritable', status: 422 });
  });

  it('executes an operation on the device', async () => {
    const response = await call('POST', '/devices/api-dev/operations/reboot');
    expect(response.status).toBe(204);
    expect(device.received.some((r) => r.path === '/3/0/4' && r.message.code === Code.POST)).toBe(true);
    const notAnOperation = await call('POST', '/devices/api-dev/operations/batteryLevel');
    expect(await notAnOperation.json()).toMatchObject({ code: 'OperationNotExecutable', status: 422 });
  });

  it('names unknown properties and refuses reads of write-only ones', async () => {
    const unknown = await call('GET', '/devices/api-dev/properties/colour');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'PropertyNotFound' });
    const writeOnly = await call('GET', '/devices/api-dev/properties/firmwarePackageUri');
    expect(await writeOnly.json()).toMatchObject({ code: 'PropertyNotReadable', status: 422 });
    const badId = await call('GET', '/devices/bad%20id/properties/batteryLevel');
    expect(await badId.json()).toMatchObject({ code: 'InvalidDeviceId', status: 400 });
    const badTimeout = await call('GET', '/devices/api-dev/properties/batteryLevel', { timeoutMs: -5 });
    expect(await badTimeout.json()).toMatchObject({ code: 'InvalidRequest', field: 'x-timeout-ms' });
  });

  it('gives DeviceNotConnected at once for a device this instance does not hold', async () => {
    const started = Date.now();
    const response = await call('GET', '/devices/api-idle/properties/batteryLevel');
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ code: 'DeviceNotConnected' });
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('gives DeviceRejected with the CoAP code when the device refuses', async () => {
    device.override = (request, path) => (path === '/3/0/14' ? { code: Code.METHOD_NOT_ALLOWED } : undefined);
    try {
      const response = await call('PUT', '/devices/api-dev/properties/utcOffset', { body: { value: '+01:00' } });
      expect(response.status).toBe(502);
      expect(await response.json()).toMatchObject({ code: 'DeviceRejected', coapCode: '4.05' });
    } finally {
      device.override = undefined;
    }
  });

  it('gives DeviceTimeout within the caller bound, and within the configured bound, for an unreachable device', async () => {
    device.unreachable = true;
    try {
      let started = Date.now();
      const lowered = await call('GET', '/devices/api-dev/properties/batteryLevel', { timeoutMs: 800 });
      let elapsed = Date.now() - started;
      expect(lowered.status).toBe(504);
      expect(await lowered.json()).toMatchObject({ code: 'DeviceTimeout' });
      expect(elapsed).toBeGreaterThanOrEqual(750);
      expect(elapsed).toBeLessThan(2000);

      started = Date.now();
      const configured = await call('POST', '/devices/api-dev/operations/reboot');
      elapsed = Date.now() - started;
      expect(await configured.json()).toMatchObject({ code: 'DeviceTimeout', status: 504 });
      expect(elapsed).toBeGreaterThanOrEqual(2900);
      expect(elapsed).toBeLessThan(5000);
      // The request was retransmitted with the same message ID (RFC 7252 §4.2) before the bound.
      const reboots = device.received.filter((r) => r.path === '/3/0/4' && r.at >= started);
      expect(reboots.length).toBeGreaterThanOrEqual(2);
      expect(new Set(reboots.map((r) => r.message.messageId)).size).toBe(1);
    } finally {
      device.unreachable = false;
    }
    // The device answers again: requests work (the NSTART slot was released).
    const response = await call('GET', '/devices/api-dev/properties/batteryLevel');
    expect(response.status).toBe(200);
  });
});
