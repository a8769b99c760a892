/**
 * The twin operations behind the HTTP API. Handlers parse and map; every rule lives here or below.
 */
import { CATALOG_NAMES, TWIN_PROPERTIES, findProperty } from './catalog';
import { toContinuationError, validateContinuationToken } from './continuationToken';
import { CredentialWriter } from './cosmosCredentialWriter';
import {
  CredentialRecord,
  SecurityView,
  credentialRecord,
  parseSecurity,
  revokedRecord,
  securityView,
} from './deviceCredentials';
import { validateDeviceId } from './deviceId';
import { TwinError } from './errors';
import { DeviceProperty, TwinDocument, newTwin } from './twin';
import { applyTwinPatch, checkContentSize, parseTwinPatch } from './twinPatch';
import { parseTwinQuery } from './twinQuery';
import { TwinPage, TwinStore } from './twinStore';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/** What provisioning, rotation and deprovisioning need besides the twin store. */
export interface CredentialDependencies {
  credentials: CredentialWriter;
  /** ms since the epoch: the version of the record written. */
  now: () => number;
  /** GENERATED_PSK_BYTES random bytes (crypto.randomBytes in the app). */
  generateKey: () => Buffer;
}

/** `security` in a response: mode and identity, plus the key only when the service generated it in this request. */
export type SecurityResponse = SecurityView & { key?: string };

/**
 * Provisions: body `{ security, tags?, serviceProperties? }`; `security` is mandatory (`{"mode":"none"}` must be
 * said). A new device gets its twin (with the security view, never the key) and then its credential record; the
 * 201 carries a generated key once. An existing device (200) keeps its twin and credentials as they are: rotation
 * is POST /api/devices/{id}/credentials. When the credential write fails, the new twin is deleted again, so a retry
 * starts afresh; when the twin was deprovisioned meanwhile, the record written is revoked again.
 */
export async function provisionDevice(
  store: TwinStore,
  dependencies: CredentialDependencies,
  deviceId: string,
  body: unknown,
  now: string,
): Promise<{ twin: TwinDocument; created: boolean; security?: SecurityResponse }> {
  validateDeviceId(deviceId);
  body ??= {}; // no body: the missing `security` is what to fix
  if (!isPlainObject(body)) {
    throw new TwinError(
      'InvalidRequest',
      'The body must be a JSON object with security, e.g. {"security":{"mode":"psk"}}',
      {
        field: '',
      },
    );
  }
  const { security: rawSecurity, ...content } = body;
  const security = parseSecurity(rawSecurity, 'security');
  const init = parseTwinPatch(content, { allowNull: false });
  const { record, generatedKey } = credentialRecord(deviceId, security, dependencies.now(), dependencies.generateKey);
  const twin: TwinDocument = { ...newTwin(deviceId, init, now), security: securityView(record) };
  checkContentSize(twin, init);
  const result = await store.create(twin);
  if (!result.created) return result;
  try {
    await dependencies.credentials.write(record);
  } catch (error) {
    await store.delete(deviceId).catch(() => false);
    throw error;
  }
  await revokeUnlessProvisioned(store, dependencies, deviceId);
  return { ...result, security: responseSecurity(record, generatedKey) };
}

/**
 * Rotates (or changes) a device's credentials: body `{ security }`, as on provisioning. Writes a new version of the
 * record (the connector ends the device's session when its change feed brings it) and the twin's security view.
 * Resolves to the twin and the security, with the key when the service generated it.
 */
export async function rotateCredentials(
  store: TwinStore,
  dependencies: CredentialDependencies,
  deviceId: string,
  body: unknown,
): Promise<{ twin: TwinDocument; security: SecurityResponse }> {
  validateDeviceId(deviceId);
  body ??= {}; // no body: the missing `security` is what to fix
  if (!isPlainObject(body)) {
    throw new TwinError('InvalidRequest', 'The body must be a JSON object such as {"security":{"mode":"psk"}}', {
      field: '',
    });
  }
  for (const key of Object.keys(body)) {
    if (key !== 'security') {
      throw new TwinError('InvalidRequest', `Field "${key}" cannot be set here; only security can`, { field: key });
    }
  }
  const security = parseSecurity(body.security, 'security');
  if (!(await store.get(deviceId))) throw deviceNotFound(deviceId);
  const { record, generatedKey } = credentialRecord(deviceId, security, dependencies.now(), dependencies.generateKey);
  await dependencies.credentials.write(record);
  const view = securityView(record);
  const twin = await store.update(deviceId, (current) =>
    sameSecurity(current.security, view) ? undefined : { ...current, security: view },
  );
  if (!twin) {
    // Deprovisioned between the check and the write: the record just written must not outlive the device.
    await dependencies.credentials.write(revokedRecord(deviceId, dependencies.now()));
    throw deviceNotFound(deviceId);
  }
  return { twin, security: responseSecurity(record, generatedKey) };
}

/**
 * Deprovisions: the device's credentials are revoked first (a revoked record, which the connector's change feed
 * turns into a deleted key and an ended session), then the twin is deleted, then the connector instance holding
 * the device's registration is told to end it at once (its Update and De-register get 4.04, its notifications
 * RST). Telling the connector is best effort: when it cannot be reached, its next write for the device finds no
 * twin (or a new provisioning's twin, which its registration does not own) and it ends the registration then; the
 * revoked credentials end the DTLS session regardless. Resolves to the connector's failure, if any.
 */
export async function deprovisionDevice(
  store: TwinStore,
  dependencies: Pick<CredentialDependencies, 'credentials' | 'now'>,
  deviceId: string,
  endRegistration: (connectorUrl: string, deviceId: string) => Promise<void>,
): Promise<{ connectorError?: unknown }> {
  validateDeviceId(deviceId);
  const twin = await store.get(deviceId);
  if (!twin) throw deviceNotFound(deviceId);
  await dependencies.credentials.write(revokedRecord(deviceId, dependencies.now()));
  if (!(await store.delete(deviceId))) throw deviceNotFound(deviceId);
  const connectorUrl = twin.connection.state === 'connected' ? twin.connection.connectorUrl : undefined;
  if (!connectorUrl) return {};
  try {
    await endRegistration(connectorUrl, deviceId);
    return {};
  } catch (connectorError) {
    return { connectorError };
  }
}

/** A provisioning racing a deprovisioning may write its record after the revocation: revoke again then. */
async function revokeUnlessProvisioned(
  store: TwinStore,
  dependencies: Pick<CredentialDependencies, 'credentials' | 'now'>,
  deviceId: string,
): Promise<void> {
  if (await store.get(deviceId)) return;
  await dependencies.credentials.write(revokedRecord(deviceId, dependencies.now()));
  throw deviceNotFound(deviceId);
}

function responseSecurity(record: CredentialRecord, generatedKey: string | undefined): SecurityResponse {
  return generatedKey === undefined ? securityView(record) : { ...securityView(record), key: generatedKey };
}

function sameSecurity(a: SecurityView | undefined, b: SecurityView): boolean {
  return a?.mode === b.mode && a.identity === b.identity;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
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
