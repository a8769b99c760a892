/**
 * ConnectorClient over real HTTP against the connector's internal API (createInternalApi) with scripted device
 * operations: results, problem codes mapped back to TwinError, the timeout header, and an unreachable connector.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { CatalogEntry, PropertyValue } from '../../shared/catalog';
import { ConnectorClient } from '../../shared/connectorClient';
import { TwinError, isTwinError } from '../../shared/errors';
import { DeviceOperations, createInternalApi } from '../../connector/internalApi';
import { silentLogger } from '../../connector/logger';

describe('ConnectorClient', () => {
  const calls: { op: string; deviceId: string; name: string; value?: PropertyValue; timeoutMs: number }[] = [];
  let failure: TwinError | undefined;
  let server: http.Server;
  let url: string;
  const operations: DeviceOperations = {
    read: async (deviceId, entry: CatalogEntry, timeoutMs) => {
      calls.push({ op: 'read', deviceId, name: entry.name, timeoutMs });
      if (failure) throw failure;
      return { value: 42, time: '2026-01-01T00:00:00.000Z' };
    },
    write: async (deviceId, entry, value, timeoutMs) => {
      calls.push({ op: 'write', deviceId, name: entry.name, value, timeoutMs });
      if (failure) throw failure;
    },
    execute: async (deviceId, entry, timeoutMs) => {
      calls.push({ op: 'execute', deviceId, name: entry.name, timeoutMs });
      if (failure) throw failure;
    },
    endRegistration: (deviceId) => {
      calls.push({ op: 'endRegistration', deviceId, name: '', timeoutMs: 0 });
      return true;
    },
    health: () => ({}),
  };
  const client = new ConnectorClient('client-key');

  beforeAll(async () => {
    server = createInternalApi({ operations, apiKey: 'client-key', deviceTimeoutMs: 20_000, log: silentLogger });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    calls.length = 0;
    failure = undefined;
  });

  it('reads, writes and executes, passing the timeout to the connector', async () => {
    await expect(client.read(url, 'dev:1', 'batteryLevel', { timeoutMs: 1500 })).resolves.toEqual({
      deviceId: 'dev:1',
      property: 'batteryLevel',
      value: 42,
      time: '2026-01-01T00:00:00.000Z',
    });
    await client.write(url, 'dev:1', 'timezone', 'UTC');
    await client.execute(url, 'dev:1', 'reboot', { timeoutMs: 99_000 });
    await client.endRegistration(url, 'dev:1');
    expect(calls).toEqual([
      { op: 'read', deviceId: 'dev:1', name: 'batteryLevel', timeoutMs: 1500 },
      { op: 'write', deviceId: 'dev:1', name: 'timezone', value: 'UTC', timeoutMs: 20_000 },
      { op: 'execute', deviceId: 'dev:1', name: 'reboot', timeoutMs: 20_000 },
      { op: 'endRegistration', deviceId: 'dev:1', name: '', timeoutMs: 0 },
    ]);
  });

  it('maps problem responses to TwinError with the same code and extensions', async () => {
    failure = new TwinError('DeviceRejected', 'refused with 4.05', { coapCode: '4.05' });
    const rejected = await client.read(url, 'd', 'batteryLevel').catch((e: unknown) => e);
    expect(isTwinError(rejected, 'DeviceRejected')).toBe(true);
    expect((rejected as TwinError).extensions).toEqual({ coapCode: '4.05' });
    expect((rejected as TwinError).message).toBe('refused with 4.05');
    for (const code of ['DeviceTimeout', 'DeviceNotConnected'] as const) {
      failure = new TwinError(code, code);
      expect(isTwinError(await client.execute(url, 'd', 'reboot').catch((e: unknown) => e), code)).toBe(true);
    }
    failure = undefined;
    const invalid = await client.write(url, 'd', 'batteryLevel', 5).catch((e: unknown) => e);
    expect(isTwinError(invalid, 'PropertyNotWritable')).toBe(true);
    const wrongKey = await new ConnectorClient('nope').read(url, 'd', 'batteryLevel').catch((e: unknown) => e);
    expect(isTwinError(wrongKey, 'Unauthorized')).toBe(true);
  });

  it('reports an unreachable connector, or one answering without a problem document, as ConnectorUnavailable', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = await client.read(`http://127.0.0.1:${port}`, 'd', 'batteryLevel').catch((e: unknown) => e);
    expect(isTwinError(unreachable, 'ConnectorUnavailable')).toBe(true);
    // The connection was never made: a write or execute surely did not reach the device.
    expect((unreachable as TwinError).extensions).toEqual({ requestSent: false });

    const proxy = http.createServer((_req, res) => res.writeHead(502).end('bad gateway'));
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const error = await client.execute(proxyUrl, 'd', 'reboot').catch((e: unknown) => e);
      expect(isTwinError(error, 'ConnectorUnavailable')).toBe(true);
      expect((error as TwinError).extensions).toEqual({ status: 502 });
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it('gives up on a connector that hangs past the device bound plus the margin', async () => {
    const hanging = http.createServer(() => undefined);
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const quick = new ConnectorClient('k', { httpMarginMs: 100 });
      const started = Date.now();
      const hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`;
      const error = await quick.read(hangingUrl, 'd', 'batteryLevel', { timeoutMs: 200 }).catch((e: unknown) => e);
      expect(isTwinError(error, 'ConnectorUnavailable')).toBe(true);
      expect((error as TwinError).extensions).not.toHaveProperty('requestSent');
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });
});
