/**
 * The property catalog: every LwM2M resource the twin knows, as one table.
 *
 * Names are the twin's property names. A readable property is observed and mirrored in the twin;
 * a write-only or execute-only one is reached through jobs only. Pure data and rules: no SDK imports.
 */

export type PropertyType = 'string' | 'integer' | 'time' | 'none';

/** Observation classes: each has its own default pmin/pmax (see `ObservationDefaults`). */
export type PropertyClass = 'device' | 'firmwareUpdate' | 'server';

export interface CatalogEntry {
  /** The twin's property name. */
  readonly name: string;
  /** LwM2M path `/object/instance/resource`. */
  readonly path: string;
  readonly objectId: number;
  readonly instanceId: number;
  readonly resourceId: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
  readonly type: PropertyType;
  readonly propertyClass: PropertyClass;
  /** Inclusive integer range, when the type is bounded. */
  readonly min?: number;
  readonly max?: number;
  /** Maximum length in characters: every string entry has one (`MAX_STRING_LENGTH` unless it says less). */
  readonly maxLength?: number;
  /** A format a string must match, with the message that names it. */
  readonly pattern?: { readonly regex: RegExp; readonly description: string };
  readonly unit?: string;
}

type Ops = 'R' | 'W' | 'RW' | 'E';

interface EntrySpec {
  type?: PropertyType;
  propertyClass?: PropertyClass;
  min?: number;
  max?: number;
  maxLength?: number;
  pattern?: { regex: RegExp; description: string };
  unit?: string;
}

/** The LwM2M limit on 32-bit signed integers (TLV integer resources used here fit in 4 bytes). */
const INT32_MAX = 2_147_483_647;

/**
 * Longest string a string property may hold, characters, unless its entry says less. LwM2M object 5 bounds the
 * package URI to 255 bytes; objects 1 and 3 give their strings no bound, so the twin takes the same one: it keeps
 * a device from filling its twin (a notify and a deep read over it are refused, like a write).
 */
export const MAX_STRING_LENGTH = 255;

function entry(name: string, path: string, ops: Ops, spec: EntrySpec = {}): CatalogEntry {
  const [objectId, instanceId, resourceId] = path.split('/').slice(1).map(Number);
  const executable = ops === 'E';
  return Object.freeze({
    name,
    path,
    objectId,
    instanceId,
    resourceId,
    readable: ops === 'R' || ops === 'RW',
    writable: ops === 'W' || ops === 'RW',
    executable,
    type: executable ? 'none' : (spec.type ?? 'string'),
    propertyClass: spec.propertyClass ?? (objectId === 5 ? 'firmwareUpdate' : objectId === 1 ? 'server' : 'device'),
    ...(spec.min !== undefined && { min: spec.min }),
    ...(spec.max !== undefined && { max: spec.max }),
    ...((spec.type ?? 'string') === 'string' && !executable && { maxLength: spec.maxLength ?? MAX_STRING_LENGTH }),
    ...(spec.pattern && { pattern: spec.pattern }),
    ...(spec.unit && { unit: spec.unit }),
  });
}

const utcOffset = { regex: /^[+-](?:0\d|1[0-4]):[0-5]\d$/, description: '+HH:MM or -HH:MM' };
/** IANA names: `Area/Location`, `UTC`, `Etc/GMT+5`... (checked against the runtime's zone list where it has one). */
const ianaZone = { regex: /^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/, description: 'an IANA time zone name' };

export const CATALOG: readonly CatalogEntry[] = Object.freeze([
  entry('manufacturer', '/3/0/0', 'R'),
  entry('modelNumber', '/3/0/1', 'R'),
  entry('serialNumber', '/3/0/2', 'R'),
  entry('firmwareVersion', '/3/0/3', 'R'),
  entry('reboot', '/3/0/4', 'E'),
  entry('factoryReset', '/3/0/5', 'E'),
  entry('batteryLevel', '/3/0/9', 'R', { type: 'integer', min: 0, max: 100, unit: '%' }),
  entry('memoryFree', '/3/0/10', 'R', { type: 'integer', min: 0, max: INT32_MAX, unit: 'KB' }),
  entry('currentTime', '/3/0/13', 'RW', { type: 'time', min: 0, max: 2 ** 53 - 1, unit: 's' }),
  entry('utcOffset', '/3/0/14', 'RW', { pattern: utcOffset }),
  entry('timezone', '/3/0/15', 'RW', { maxLength: 64, pattern: ianaZone }),
  entry('deviceType', '/3/0/17', 'R'),
  entry('hardwareVersion', '/3/0/18', 'R'),
  entry('batteryStatus', '/3/0/20', 'R', { type: 'integer', min: 0, max: 6 }),
  entry('memoryTotal', '/3/0/21', 'R', { type: 'integer', min: 0, max: INT32_MAX, unit: 'KB' }),
  entry('firmwarePackageUri', '/5/0/1', 'W', { maxLength: 255 }), // LwM2M: 0-255 bytes
  entry('firmwareUpdate', '/5/0/2', 'E'),
  entry('firmwareUpdateState', '/5/0/3', 'R', { type: 'integer', min: 0, max: 3 }),
  entry('firmwareUpdateResult', '/5/0/5', 'R', { type: 'integer', min: 0, max: 9 }),
  entry('firmwarePackageName', '/5/0/6', 'R'),
  entry('firmwarePackageVersion', '/5/0/7', 'R'),
  entry('registrationLifetime', '/1/0/1', 'RW', { type: 'integer', min: 1, max: INT32_MAX, unit: 's' }),
  entry('defaultMinPeriod', '/1/0/2', 'RW', { type: 'integer', min: 0, max: INT32_MAX, unit: 's' }),
  entry('defaultMaxPeriod', '/1/0/3', 'RW', { type: 'integer', min: 1, max: INT32_MAX, unit: 's' }),
]);

const byName = new Map(CATALOG.map((e) => [e.name, e]));
const byPath = new Map(CATALOG.map((e) => [e.path, e]));

/** The names of all catalog entries, for error messages ("known properties: ..."). */
export const CATALOG_NAMES: readonly string[] = CATALOG.map((e) => e.name);
/** Properties mirrored in the twin: every readable one, in catalog order. */
export const TWIN_PROPERTIES: readonly CatalogEntry[] = CATALOG.filter((e) => e.readable);

export function findProperty(name: string): CatalogEntry | undefined {
  return byName.get(name);
}

export function findPropertyByPath(path: string): CatalogEntry | undefined {
  return byPath.get(path);
}

/** Observation attributes in seconds, per property class. */
export interface ObservationAttributes {
  readonly pmin: number;
  readonly pmax: number;
}

export type ObservationDefaults = Readonly<Record<PropertyClass, ObservationAttributes>>;

/** The design's defaults: at most one notify per 5 min, at least one per 6 h; firmware update pmin 30 s. */
export const DEFAULT_OBSERVATION: ObservationDefaults = Object.freeze({
  device: { pmin: 300, pmax: 21_600 },
  server: { pmin: 300, pmax: 21_600 },
  firmwareUpdate: { pmin: 30, pmax: 21_600 },
});

export function observationFor(entry: CatalogEntry, defaults: ObservationDefaults): ObservationAttributes {
  return defaults[entry.propertyClass];
}

/** A property value as the twin holds it: strings and integers (times are Unix seconds). */
export type PropertyValue = string | number;

export type ValueCheck = { ok: true; value: PropertyValue } | { ok: false; reason: string };

/**
 * Checks a value against the entry's type and range: the one rule for values written by API callers and for
 * readings from devices (notifies and deep reads are refused when they fail it).
 * The reason names the property and what was expected, for a 400 that tells the caller what to fix.
 */
export function validateValue(entry: CatalogEntry, value: unknown): ValueCheck {
  const fail = (expected: string): ValueCheck => ({
    ok: false,
    reason: `${entry.name} must be ${expected}; got ${describe(value)}`,
  });
  switch (entry.type) {
    case 'none':
      return fail('absent: it is an operation, not a value');
    case 'integer':
    case 'time': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        return fail(entry.type === 'time' ? 'an integer number of Unix seconds' : 'an integer');
      }
      if ((entry.min !== undefined && value < entry.min) || (entry.max !== undefined && value > entry.max)) {
        return fail(`an integer from ${entry.min} to ${entry.max}`);
      }
      return { ok: true, value };
    }
    case 'string': {
      if (typeof value !== 'string') return fail('a string');
      if (entry.maxLength !== undefined && value.length > entry.maxLength) {
        return fail(`a string of at most ${entry.maxLength} characters`);
      }
      if (entry.pattern && !entry.pattern.regex.test(value)) return fail(entry.pattern.description);
      if (entry.name === 'timezone' && !isKnownTimeZone(value)) return fail('an IANA time zone name');
      return { ok: true, value };
    }
  }
}

let knownZones: Set<string> | undefined;

function isKnownTimeZone(name: string): boolean {
  if (!knownZones) {
    const supported = (Intl as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf;
    knownZones = new Set(supported ? supported('timeZone') : []);
    knownZones.add('UTC');
  }
  if (knownZones.size <= 1 || knownZones.has(name)) return true;
  try {
    // Aliases (Etc/GMT+5, Asia/Calcutta) are valid IANA names that the canonical list omits.
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : `"${value}"`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return Array.isArray(value) ? 'an array' : typeof value;
}
