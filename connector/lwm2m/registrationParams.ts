/**
 * Query parameters of the LwM2M registration interface (LwM2M 1.0-1.2 Core §6.2, Transport §6.4):
 * Register `POST /rd?ep=..&lt=..&lwm2m=..&b=..` and Update `POST /rd/{id}?lt=..&b=..`.
 */
import { Lwm2mPayloadError } from './lwm2mPayloadError';

/** Lifetime when a Register omits `lt` (LwM2M Server object resource 1 default: 86400 s). */
export const DEFAULT_LIFETIME_SECONDS = 86_400;
/** Binding when a Register omits `b`: UDP. */
export const DEFAULT_BINDING = 'U';
/** Version assumed when a Register omits `lwm2m` (only 1.0 clients may). */
export const DEFAULT_LWM2M_VERSION = '1.0';
/** Enabler versions this server accepts: 1.0, 1.1 and 1.2 (with an optional patch level such as 1.0.2). */
const SUPPORTED_VERSION = /^1\.[0-2](?:\.\d+)?$/;
/** Lifetime bounds, seconds: at least 1, at most a 32-bit unsigned value as the Server object allows. */
const MAX_LIFETIME_SECONDS = 0xffffffff;
/** Binding letters of 1.0 (U, S, Q) and 1.1+ (U, M, H, T, S, N, with Q as its own parameter). */
const BINDING = /^[UMHTSNQ]{1,8}$/;
const MAX_ENDPOINT_LENGTH = 256;

export interface RegisterParams {
  endpoint: string;
  lifetime: number;
  lwm2mVersion: string;
  binding: string;
}

export interface UpdateParams {
  lifetime?: number;
  binding?: string;
}

/** Thrown for an unsupported LwM2M version: answered 4.12 Precondition Failed. */
export class UnsupportedVersionError extends Lwm2mPayloadError {}

function queryMap(queries: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const query of queries) {
    const at = query.indexOf('=');
    const name = at < 0 ? query : query.slice(0, at);
    if (map.has(name)) throw new Lwm2mPayloadError(`query parameter ${name} appears twice`);
    map.set(name, at < 0 ? '' : query.slice(at + 1));
  }
  return map;
}

function lifetime(raw: string): number {
  if (!/^\d{1,10}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIFETIME_SECONDS) {
    throw new Lwm2mPayloadError(
      `lt must be an integer number of seconds from 1 to ${MAX_LIFETIME_SECONDS}; got "${raw}"`,
    );
  }
  return Number(raw);
}

function binding(raw: string): string {
  if (!BINDING.test(raw)) throw new Lwm2mPayloadError(`b must be a binding mode such as U or UQ; got "${raw}"`);
  return raw;
}

/** Parses a Register's `Uri-Query` options. Unknown parameters are ignored, as the spec allows extensions. */
export function parseRegisterParams(queries: readonly string[]): RegisterParams {
  const params = queryMap(queries);
  const endpoint = params.get('ep');
  if (endpoint === undefined || endpoint === '') throw new Lwm2mPayloadError('ep (endpoint client name) is required');
  if (endpoint.length > MAX_ENDPOINT_LENGTH) throw new Lwm2mPayloadError(`ep is longer than ${MAX_ENDPOINT_LENGTH}`);
  const version = params.get('lwm2m') ?? DEFAULT_LWM2M_VERSION;
  if (!SUPPORTED_VERSION.test(version)) {
    throw new UnsupportedVersionError(`LwM2M version "${version}" is not supported (1.0, 1.1 and 1.2 are)`);
  }
  const queueMode = params.has('Q');
  const b = params.has('b') ? binding(params.get('b') as string) : DEFAULT_BINDING;
  return {
    endpoint,
    lifetime: params.has('lt') ? lifetime(params.get('lt') as string) : DEFAULT_LIFETIME_SECONDS,
    lwm2mVersion: version,
    binding: queueMode && !b.includes('Q') ? `${b}Q` : b,
  };
}

/** Parses an Update's `Uri-Query` options (all optional). */
export function parseUpdateParams(queries: readonly string[]): UpdateParams {
  const params = queryMap(queries);
  return {
    ...(params.has('lt') && { lifetime: lifetime(params.get('lt') as string) }),
    ...(params.has('b') && { binding: binding(params.get('b') as string) }),
  };
}
