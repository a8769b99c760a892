/**
 * Shallow read with a freshness bound: `Cache-Control: max-age=N` (or `?maxAge=N`) on a device property. When the
 * twin's value is older than N seconds, a deep read goes to the device and the caller waits for it up to a bound;
 * the answer is then the device's value, or, when the device did not answer in time, the twin's value marked as
 * not refreshed. Either way the caller learns which one answered (`source`).
 */
import { PropertyValue } from './catalog';
import { TwinError } from './errors';
import { DeviceProperty, TwinDocument } from './twin';
import { readDeviceProperty } from './twinOperations';
import { TwinStore } from './twinStore';

/** Largest max-age honoured, seconds (RFC 9111 §1.2.2: a delta-seconds beyond 2^31 means 2^31). */
export const MAX_AGE_LIMIT_SECONDS = 2 ** 31;

export type DeepReadOutcome =
  /** The device answered; the twin holds this value now (or a newer one). */
  | { status: 'completed'; value: PropertyValue; lastUpdatedTime: string }
  /** The deep read ended without a value; `code` is a stable error code (`DeviceRejected`, ...). */
  | { status: 'failed'; code: string; message: string }
  /** Still running when the wait ended; it may still complete and update the twin later. */
  | { status: 'timedOut' };

/** Runs deep reads for the read-through (the jobs machinery, or a direct connector call). */
export interface DeepReader {
  /** Starts a deep read of one property and resolves when it ended or after about `waitMs` milliseconds. */
  readProperty(deviceId: string, property: string, waitMs: number): Promise<DeepReadOutcome>;
}

/** Which one answered: the device (a deep read made for this request) or the twin. */
export type AnswerSource = 'device' | 'twin';

export interface ReadThroughOptions {
  /** Seconds; undefined = any age (a plain shallow read). */
  maxAgeSeconds?: number;
  /** Bound on the wait for the device, milliseconds. */
  waitMs: number;
  now: () => string;
}

export interface ReadThroughResult {
  twin: TwinDocument;
  property: DeviceProperty;
  source: AnswerSource;
  /**
   * Present when the value was older than max-age: false when the device did not give a fresh value in time,
   * with a stable code (`DeviceNotConnected`, `DeviceTimeout`, `DeviceRejected`, `PropertyNotSupported`, ...).
   */
  refresh?: { refreshed: true } | { refreshed: false; code: string; detail: string };
}

/** The property's age in seconds at `now`, or Infinity when it has no value yet. */
export function ageSeconds(property: DeviceProperty, now: string): number {
  if (property.lastUpdatedTime === undefined) return Infinity;
  return Math.max(0, (Date.parse(now) - Date.parse(property.lastUpdatedTime)) / 1000);
}

export async function readThroughDeviceProperty(
  store: TwinStore,
  deepReader: DeepReader | undefined,
  deviceId: string,
  name: string,
  options: ReadThroughOptions,
): Promise<ReadThroughResult> {
  const { twin, property } = await readDeviceProperty(store, deviceId, name);
  if (options.maxAgeSeconds === undefined || ageSeconds(property, options.now()) <= options.maxAgeSeconds) {
    return { twin, property, source: 'twin' };
  }
  const notRefreshed = (code: string, detail: string): ReadThroughResult => ({
    twin,
    property,
    source: 'twin',
    refresh: { refreshed: false, code, detail },
  });
  if (!property.supported) {
    return notRefreshed('PropertyNotSupported', `${deviceId} does not have ${name}`);
  }
  if (twin.connection.state !== 'connected') {
    return notRefreshed('DeviceNotConnected', `${deviceId} is ${twin.connection.state}; the twin's value is shown`);
  }
  if (!deepReader) {
    return notRefreshed('DeepReadUnavailable', 'Deep reads are not available in this deployment');
  }

  const outcome = await withinBound(deepReader.readProperty(deviceId, name, options.waitMs), options.waitMs);
  if (outcome.status === 'timedOut') {
    return notRefreshed('DeviceTimeout', `${deviceId} did not answer within ${options.waitMs} ms`);
  }
  if (outcome.status === 'failed') return notRefreshed(outcome.code, outcome.message);

  // The deep read wrote the twin; read it again for the whole property (a newer notify may have landed since).
  const after = await store.get(deviceId);
  const current = after?.deviceProperties[name];
  const fresh: DeviceProperty =
    current?.lastUpdatedTime !== undefined && current.lastUpdatedTime >= outcome.lastUpdatedTime
      ? current
      : {
          ...(current ?? property),
          value: outcome.value,
          lastUpdatedTime: outcome.lastUpdatedTime,
          source: 'deepRead',
          stale: false,
          staleSince: null,
          staleReason: null,
        };
  return { twin: after ?? twin, property: fresh, source: 'device', refresh: { refreshed: true } };
}

/** Whatever `reading` gives, or `timedOut` after `waitMs` (the bound holds even if a DeepReader overruns it). */
async function withinBound(reading: Promise<DeepReadOutcome>, waitMs: number): Promise<DeepReadOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<DeepReadOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ status: 'timedOut' }), waitMs);
  });
  try {
    return await Promise.race([reading, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The max-age a request asks for, seconds: `max-age=N` in Cache-Control (other directives are ignored) and/or the
 * `maxAge` query parameter; with both, the smaller. Undefined when neither is given. A malformed value is a 400
 * naming where it came from.
 */
export function parseMaxAge(cacheControl: string | null, maxAgeParameter: string | null): number | undefined {
  const candidates: number[] = [];
  if (maxAgeParameter !== null) candidates.push(deltaSeconds(maxAgeParameter, 'maxAge'));
  for (const directive of (cacheControl ?? '').split(',')) {
    const match = /^\s*max-age\s*=\s*(.*?)\s*$/i.exec(directive);
    if (match) candidates.push(deltaSeconds(match[1].replace(/^"(.*)"$/, '$1'), 'Cache-Control'));
  }
  return candidates.length === 0 ? undefined : Math.min(...candidates);
}

function deltaSeconds(text: string, field: string): number {
  if (!/^\d+$/.test(text)) {
    throw new TwinError('InvalidRequest', `${field} max-age must be a whole number of seconds; got "${text}"`, {
      field,
    });
  }
  return Math.min(Number(text), MAX_AGE_LIMIT_SECONDS);
}

/**
 * The longest wait a request accepts, milliseconds, from `Prefer: wait=N` (RFC 7240 §4.3, seconds), capped at
 * `limitMs`; `limitMs` when the preference is absent or unreadable (a preference is advisory, never an error).
 */
export function parsePreferWait(prefer: string | null, limitMs: number): number {
  const match = /(?:^|[,;]\s*)wait\s*=\s*"?(\d+)"?/i.exec(prefer ?? '');
  return match ? Math.min(Number(match[1]) * 1000, limitMs) : limitMs;
}
