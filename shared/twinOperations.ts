/**
 * The twin operations behind the HTTP API. Handlers parse and map; every rule lives here or below.
 */
import { CATALOG_NAMES, TWIN_PROPERTIES, findProperty } from './catalog';
import { toContinuationError, validateContinuationToken } from './continuationToken';
import { validateDeviceId } from './deviceId';
import { TwinError } from './errors';
import { DeviceProperty, TwinDocument, newTwin } from './twin';
import { applyTwinPatch, checkContentSize, parseTwinPatch } from './twinPatch';
import { parseTwinQuery } from './twinQuery';
import { TwinPage, TwinStore } from './twinStore';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export async function provisionDevice(
  store: TwinStore,
  deviceId: string,
  body: unknown,
  now: string,
): Promise<{ twin: TwinDocument; created: boolean }> {
  validateDeviceId(deviceId);
  const init = parseTwinPatch(body ?? {}, { allowNull: false });
  const twin = newTwin(deviceId, init, now);
  checkContentSize(twin, init);
  return store.create(twin);
}

/**
 * Deprovisions: the twin is deleted, then the connector instance holding the device's registration is told to end
 * it at once (its Update and De-register get 4.04, its notifications RST). Telling the connector is best effort:
 * when it cannot be reached, its next write for the device finds no twin (or a new provisioning's twin, which its
 * registration does not own) and it ends the registration then. Resolves to the connector's failure, if any.
 */
export async function deprovisionDevice(
  store: TwinStore,
  deviceId: string,
  endRegistration: (connectorUrl: string, deviceId: string) => Promise<void>,
): Promise<{ connectorError?: unknown }> {
  validateDeviceId(deviceId);
  const twin = await store.get(deviceId);
  if (!twin || !(await store.delete(deviceId))) throw deviceNotFound(deviceId);
  const connectorUrl = twin.connection.state === 'connected' ? twin.connection.connectorUrl : undefined;
  if (!connectorUrl) return {};
  try {
    await endRegistration(connectorUrl, deviceId);
    return {};
  } catch (connectorError) {
    return { connectorError };
  }
}

export async function readTwin(store: TwinStore, deviceId: string): Promise<TwinDocument> {
  validateDeviceId(deviceId);
  const twin = await store.get(deviceId);
  if (!twin) throw deviceNotFound(deviceId);
  return twin;
}

const twinPropertyNames = TWIN_PROPERTIES.map((e) => e.name).join(', ');

export async function readDeviceProperty(
  store: TwinStore,
  deviceId: string,
  name: string,
): Promise<{ twin: TwinDocument; property: DeviceProperty }> {
  validateDeviceId(deviceId);
  const entry = findProperty(name);
  if (!entry || !entry.readable) {
    const why = entry ? `${name} is ${entry.executable ? 'an operation' : 'write-only'}, not in the twin` : '';
    throw new TwinError(
      'PropertyNotFound',
      `${why || `Unknown device property "${name}"`}; the twin holds: ${twinPropertyNames}`,
      { field: 'name', catalog: CATALOG_NAMES },
    );
  }
  const twin = await readTwin(store, deviceId);
  const property = twin.deviceProperties[name];
  if (!property) {
    throw new TwinError(
      'PropertyNotFound',
      `${deviceId} has not reported ${name} (connection state: ${twin.connection.state})`,
      { field: 'name' },
    );
  }
  return { twin, property };
}

export async function patchTwin(
  store: TwinStore,
  deviceId: string,
  body: unknown,
  ifMatch: string | undefined,
  now: string,
): Promise<TwinDocument> {
  validateDeviceId(deviceId);
  const patch = parseTwinPatch(body);
  const twin = await store.update(deviceId, (current) => applyTwinPatch(current, patch, now), { ifMatch });
  if (!twin) throw deviceNotFound(deviceId);
  return twin;
}

export async function queryTwins(store: TwinStore, params: URLSearchParams, continuation?: string): Promise<TwinPage> {
  const query = parseTwinQuery(params);
  const rawSize = params.get('pageSize');
  const pageSize = rawSize === null ? DEFAULT_PAGE_SIZE : Number(rawSize);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new TwinError('InvalidQuery', `pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}`, {
      field: 'pageSize',
    });
  }
  // An empty token is no token (the first page), as the store treats it.
  const token = continuation || params.get('continuation') || undefined;
  if (token !== undefined) validateContinuationToken(token);
  try {
    return await store.query(query, pageSize, token);
  } catch (error) {
    throw toContinuationError(error, token);
  }
}

function deviceNotFound(deviceId: string): TwinError {
  return new TwinError('DeviceNotFound', `No device ${deviceId} is provisioned`, { deviceId });
}
