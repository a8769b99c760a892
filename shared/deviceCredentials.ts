/**
 * Device credentials (issue 10): what provisioning and rotation accept as `security`, the record the Functions app
 * writes to the Cosmos `credentials` container and the connector alone reads (change feed), and the view the API
 * may show. Pure: no SDK imports.
 *
 * A key is never in a GET, a log line, an event or the twins container: the only places it appears are the
 * `credentials` container, the 201/200 body of the request that generated it (once), and the connector's memory.
 */
import { TwinError } from './errors';

export type SecurityMode = 'psk' | 'none';
export const SECURITY_MODES: readonly SecurityMode[] = ['psk', 'none'];

/** What PUT /api/devices/{id} and POST /api/devices/{id}/credentials accept as `security`. */
export interface SecurityRequest {
  mode: SecurityMode;
  /** psk: the PSK identity; defaults to the deviceId. */
  identity?: string;
  /** psk: the key, hex or base64 of 16-64 bytes; generated (16 bytes) by the service when absent. */
  key?: string;
}

/** The stored credential record (Cosmos `credentials`, written by the Functions app, read only by the connector). */
export interface CredentialRecord {
  /** = deviceId */
  id: string;
  deviceId: string;
  /** Ignored when `revoked` (a revoked record is `psk` without identity or key, so it fails closed either way). */
  mode: SecurityMode;
  /**
   * psk: the PSK identity, 1-128 characters of printable ASCII (RFC 4279 §5.1 allows up to 2^16-1 bytes of UTF-8;
   * we bound it). Uniqueness among active records is NOT enforced by the store.
   */
  identity?: string;
  /** psk: base64 of the 16-64 key bytes. */
  key?: string;
  /** ms since the epoch of this version of the record (a rotation writes a new one): newer wins. */
  version: number;
  /**
   * Deprovisioned: the record stays (so the connector's change feed sees the revocation) with a `ttl`, then goes.
   * A revoked record grants nothing: no session, no plain-CoAP registration.
   */
  revoked: boolean;
  /** ISO time of `version`. */
  updatedTime: string;
  /** Seconds; set on revoked records only (REVOKED_CREDENTIAL_TTL_SECONDS). Active records never expire. */
  ttl?: number;
}

/** The view the API shows: mode and identity, never the key. */
export interface SecurityView {
  mode: SecurityMode;
  identity?: string;
}

/** Bounds of a PSK, bytes: 128 bits (the CCM_8 and CBC_SHA256 suites' AES-128) up to 512 bits. */
export const MIN_PSK_BYTES = 16;
export const MAX_PSK_BYTES = 64;
/** Bytes of a key the service generates. */
export const GENERATED_PSK_BYTES = 16;
/** Bound on a PSK identity, characters (printable ASCII). */
export const MAX_PSK_IDENTITY_LENGTH = 128;
/** How long a revoked record stays for the connector's change feed to see it, seconds (7 days). */
export const REVOKED_CREDENTIAL_TTL_SECONDS = 7 * 24 * 3600;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates `security` (the value of the member named `field`, for example `security`). Throws a 400 TwinError
 * (`InvalidRequest`) whose `field` is the JSON path to fix (`security`, `security.mode`, `security.identity`,
 * `security.key`, or an unknown member's path). The error never echoes the key.
 */
export function parseSecurity(body: unknown, field: string): SecurityRequest {
  if (body === undefined || body === null) {
    throw new TwinError(
      'InvalidRequest',
      `${field} is required: {"mode":"psk"} (the service generates the key), {"mode":"psk","identity":"...","key":"..."}, or say {"mode":"none"} explicitly`,
      { field },
    );
  }
  if (!isPlainObject(body)) {
    throw new TwinError('InvalidRequest', `${field} must be an object such as {"mode":"psk"}`, { field });
  }
  for (const name of Object.keys(body)) {
    if (name !== 'mode' && name !== 'identity' && name !== 'key') {
      throw new TwinError('InvalidRequest', `${field}.${name} is not a security member; use mode, identity, key`, {
        field: `${field}.${name}`,
      });
    }
  }
  const { mode, identity, key } = body;
  if (typeof mode !== 'string' || !(SECURITY_MODES as readonly string[]).includes(mode)) {
    throw new TwinError('InvalidRequest', `${field}.mode must be "psk" or "none"`, { field: `${field}.mode` });
  }
  if (mode === 'none') {
    for (const [name, value] of [
      ['identity', identity],
      ['key', key],
    ] as const) {
      if (value !== undefined) {
        throw new TwinError('InvalidRequest', `${field}.${name} is for mode "psk"; mode "none" takes neither`, {
          field: `${field}.${name}`,
        });
      }
    }
    return { mode };
  }
  const request: SecurityRequest = { mode: 'psk' };
  if (identity !== undefined) {
    if (typeof identity !== 'string' || identity.length > MAX_PSK_IDENTITY_LENGTH || !PRINTABLE_ASCII.test(identity)) {
      throw new TwinError(
        'InvalidRequest',
        `${field}.identity must be 1-${MAX_PSK_IDENTITY_LENGTH} characters of printable ASCII; leave it out to use the deviceId`,
        { field: `${field}.identity` },
      );
    }
    request.identity = identity;
  }
  if (key !== undefined) {
    if (typeof key !== 'string' || decodeKey(key) === undefined) {
      throw new TwinError(
        'InvalidRequest',
        `${field}.key must be hex or base64 of ${MIN_PSK_BYTES}-${MAX_PSK_BYTES} bytes; leave it out to have one generated`,
        { field: `${field}.key` },
      );
    }
    request.key = key;
  }
  return request;
}

/**
 * The key's bytes: hex when the text is only hex digits in pairs, otherwise base64 (standard or URL-safe, padding
 * optional). Undefined when it is neither or not 16-64 bytes long.
 */
export function decodeKey(text: string): Buffer | undefined {
  let bytes: Buffer;
  if (HEX.test(text)) bytes = Buffer.from(text, 'hex');
  else if (BASE64.test(text)) bytes = Buffer.from(text, 'base64');
  else if (BASE64URL.test(text) && text.length % 4 !== 1) bytes = Buffer.from(text, 'base64url');
  else return undefined;
  return bytes.length >= MIN_PSK_BYTES && bytes.length <= MAX_PSK_BYTES ? bytes : undefined;
}

/**
 * The record for a (validated) security request, version `now` (ms since the epoch). psk without a key gets one
 * from `generateKey` (GENERATED_PSK_BYTES random bytes), returned as `generatedKey` (base64) for the one response
 * that may show it. The identity defaults to the deviceId.
 */
export function credentialRecord(
  deviceId: string,
  security: SecurityRequest,
  now: number,
  generateKey: () => Buffer,
): { record: CredentialRecord; generatedKey?: string } {
  const base = { id: deviceId, deviceId, version: now, revoked: false, updatedTime: new Date(now).toISOString() };
  if (security.mode === 'none') return { record: { ...base, mode: 'none' } };
  const given = security.key === undefined ? undefined : decodeKey(security.key);
  if (security.key !== undefined && !given) {
    throw new TwinError(
      'InvalidRequest',
      `security.key must be hex or base64 of ${MIN_PSK_BYTES}-${MAX_PSK_BYTES} bytes`,
      {
        field: 'security.key',
      },
    );
  }
  const key = (given ?? generateKey()).toString('base64');
  const record: CredentialRecord = { ...base, mode: 'psk', identity: security.identity ?? deviceId, key };
  return given ? { record } : { record, generatedKey: key };
}

/** The record that revokes a device's credentials (deprovisioning): no identity, no key, gone after its ttl. */
export function revokedRecord(deviceId: string, now: number): CredentialRecord {
  return {
    id: deviceId,
    deviceId,
    mode: 'psk',
    version: now,
    revoked: true,
    updatedTime: new Date(now).toISOString(),
    ttl: REVOKED_CREDENTIAL_TTL_SECONDS,
  };
}

/** The view GET returns: mode and identity, never the key. */
export function securityView(record: Pick<CredentialRecord, 'mode' | 'identity'>): SecurityView {
  return record.mode === 'psk' && record.identity !== undefined
    ? { mode: 'psk', identity: record.identity }
    : { mode: record.mode };
}

/** The response member of the request that generated a key: the only time the key leaves the service. */
export function securityWithGeneratedKey(
  record: CredentialRecord,
  generatedKey: string,
): SecurityView & { key: string } {
  return { ...securityView(record), key: generatedKey };
}
