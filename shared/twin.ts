/**
 * The twin document and its rules. Pure: no SDK imports, no clock (callers pass `now`).
 *
 * Times are ISO-8601 UTC strings (`Date.prototype.toISOString`), so they order as strings,
 * both here and in Cosmos queries.
 */
import {
  CatalogEntry,
  ObservationAttributes,
  ObservationDefaults,
  PropertyValue,
  findProperty,
  observationFor,
} from './catalog';
import { SecurityView } from './deviceCredentials';

export type ConnectionState = 'never' | 'connected' | 'disconnected';

export interface Connection {
  state: ConnectionState;
  /** When the current state began. */
  since?: string;
  /** Last register, update, notify or deep-read answer received from the device (the newest written reading's time). */
  lastActivityTime?: string;
  /** Registration lifetime, seconds. */
  lifetime?: number;
  /** LwM2M binding mode (`U`, `UQ`, ...). */
  binding?: string;
  /**
   * The device is in LwM2M queue mode (binding with `Q`, or the `Q` parameter of 1.1+): it sleeps between its
   * messages, and requests for it wait for its next Register/Update (jobs are `waiting` meanwhile).
   */
  queueMode?: boolean;
  /**
   * Queue mode only: until when the device is awake after its last Register/Update (that time + the connector's
   * awake window, `Connector__awakeWindowSeconds`). Requests reaching it later wait for its next Register/Update;
   * the connector also keeps it awake while it answers or notifies, which this time does not follow.
   */
  awakeUntil?: string;
  lwm2mVersion?: string;
  /** The registration id (`/rd/{id}`) of the current registration. */
  registrationId?: string;
  /** The connector instance holding the registration, and its internal API base URL. */
  connectorId?: string;
  connectorUrl?: string;
}

/** How a value reached the twin: a notification, a deep read's answer, or an LwM2M 1.1 Send (`POST /dp`). */
export type PropertySource = 'notify' | 'deepRead' | 'send';
export type StaleReason = 'missedNotify' | 'disconnected';

export interface DeviceProperty {
  /** Absent until the device first reports it. */
  value?: PropertyValue;
  lastUpdatedTime?: string;
  source?: PropertySource;
  /** Observation attributes in force, seconds. */
  pmin: number;
  pmax: number;
  /** When observation of this property began (counts as the last update for staleness until a value arrives). */
  observedSince?: string;
  /** False when the device answered observe with 4.04: never flagged stale. */
  supported: boolean;
  stale: boolean;
  staleSince?: string | null;
  staleReason?: StaleReason | null;
}

export type TagValue = string | number | boolean;

export interface ServiceProperty {
  value: unknown;
  lastUpdatedTime: string;
}

export interface TwinDocument {
  /** Equals deviceId. */
  id: string;
  deviceId: string;
  /** Incremented by every write. */
  version: number;
  createdTime: string;
  connection: Connection;
  tags: Record<string, TagValue>;
  serviceProperties: Record<string, ServiceProperty>;
  deviceProperties: Record<string, DeviceProperty>;
  /**
   * The earliest moment one of the device properties turns stale (lastUpdated + pmax + grace), indexed so the
   * sweep finds due twins without scanning the fleet. May be earlier than the truth (a single-property patch
   * does not recompute it; the sweep corrects it), never later. Absent when nothing can turn stale.
   */
  nextStaleAt?: string;
  /** Names of the properties flagged stale, sorted; indexed for `GET /twins?stale=true`. */
  staleProperties: string[];
  /**
   * How the device authenticates (shared/deviceCredentials.ts): mode and PSK identity, never the key, which lives in
   * the `credentials` container alone. Absent on twins provisioned before device security existed.
   */
  security?: SecurityView;
  /** Cosmos system property, present on documents read from the store. */
  _etag?: string;
}

/** A value observed on the device, to be written into the twin. */
export interface Reading {
  name: string;
  value: PropertyValue;
  /**
   * When the server received it (ISO), or for a Send record the time the device gave it (never later than its
   * arrival). Orders readings: an older one never overwrites a newer one.
   */
  time: string;
  source: PropertySource;
  /**
   * The registration that produced it (notify, Send): then it is written only while the twin is connected through
   * that registration, so a reading from an ended or replaced registration, or one for a device deprovisioned and
   * provisioned again, is refused. Absent for readings that need no registration (a deep read's answer).
   */
  registrationId?: string;
}

export function newTwin(
  deviceId: string,
  init: { tags?: Record<string, TagValue | null>; serviceProperties?: Record<string, unknown> },
  now: string,
): TwinDocument {
  const serviceProperties: Record<string, ServiceProperty> = {};
  for (const [name, value] of Object.entries(init.serviceProperties ?? {})) {
    if (value !== null) serviceProperties[name] = { value, lastUpdatedTime: now };
  }
  return {
    id: deviceId,
    deviceId,
    version: 1,
    createdTime: now,
    connection: { state: 'never' },
    tags: Object.fromEntries(
      Object.entries(init.tags ?? {}).filter((entry): entry is [string, TagValue] => entry[1] !== null),
    ),
    serviceProperties,
    deviceProperties: {},
    staleProperties: [],
  };
}

/** A fresh entry for a property the device announced, before its first value. */
export function observedProperty(attributes: ObservationAttributes, now: string): DeviceProperty {
  return { pmin: attributes.pmin, pmax: attributes.pmax, observedSince: now, supported: true, stale: false };
}

/** Whether `reading` may overwrite `current`: only a strictly newer reading does. */
export function isNewer(reading: Reading, current: DeviceProperty | undefined): boolean {
  return current?.lastUpdatedTime === undefined || reading.time > current.lastUpdatedTime;
}

/** The property after a reading: value, time and source set, stale flag cleared. */
export function withReading(current: DeviceProperty, reading: Reading): DeviceProperty {
  return { ...current, ...readingFields(reading), supported: true, stale: false };
}

/** The property fields a reading sets (besides making it supported and not stale). */
function readingFields(
  reading: Reading,
): Pick<DeviceProperty, 'value' | 'lastUpdatedTime' | 'source' | 'staleSince' | 'staleReason'> {
  return {
    value: reading.value,
    lastUpdatedTime: reading.time,
    source: reading.source,
    staleSince: null,
    staleReason: null,
  };
}

/**
 * One reading as a partial write, for a store that can write fields in place under a condition (the Cosmos patch).
 * `applyReadings` gives the same twin, except the derived `nextStaleAt` (left earlier: harmless, the sweep finds
 * nothing due), exactly when every `requires` holds on the stored twin:
 * - `property`: the twin has the property, supported and not stale (so `staleProperties` and the stale flags stay);
 * - `olderThan`: the property's lastUpdatedTime, if any, and the connection's lastActivityTime are before the reading;
 * - `registration`: for a reading from a registration, the twin is connected through it.
 * Otherwise the store must take the read-modify-write way. `set` paths are JSON-pointer-like (`/a/b`).
 */
export interface ReadingPatch {
  requires: { property: string; olderThan: string; registration?: string };
  set: { path: string; value: unknown }[];
  /** `/version` goes up by one. */
  increment: string;
}

export function readingPatch(reading: Reading): ReadingPatch {
  const base = `/deviceProperties/${reading.name}`;
  return {
    requires: { property: reading.name, olderThan: reading.time, registration: reading.registrationId },
    set: [
      ...Object.entries(readingFields(reading)).map(([field, value]) => ({ path: `${base}/${field}`, value })),
      { path: '/connection/lastActivityTime', value: reading.time },
    ],
    increment: '/version',
  };
}

/**
 * Applies readings (any order, any number per property) to a twin. Readings for properties the twin has no
 * entry for get one with the `observation` defaults' pmin/pmax (for example a deep read before the first
 * registration).
 * Returns the names that changed, and those of them that were stale before (fresh again); the twin is not
 * modified when none changed.
 */
export function applyReadings(
  twin: TwinDocument,
  readings: readonly Reading[],
  observation: ObservationDefaults,
  graceSeconds: number,
): { twin: TwinDocument; changed: string[]; refreshed: string[]; superseded: boolean } {
  const deviceProperties = { ...twin.deviceProperties };
  let superseded = false;
  const changed = new Set<string>();
  const refreshed = new Set<string>();
  for (const reading of readings) {
    if (!fromCurrentRegistration(twin, reading)) {
      superseded = true;
      continue;
    }
    const current = deviceProperties[reading.name];
    if (!isNewer(reading, current)) continue;
    if (current?.stale) refreshed.add(reading.name);
    const base = current ?? observedProperty(attributesOf(reading.name, observation), reading.time);
    deviceProperties[reading.name] = withReading(base, reading);
    changed.add(reading.name);
  }
  if (changed.size === 0) return { twin, changed: [], refreshed: [], superseded };
  const updated = {
    ...twin,
    connection: withActivity(twin.connection, readings),
    deviceProperties,
    version: twin.version + 1,
  };
  return {
    twin: withDerivedFields(updated, graceSeconds),
    changed: [...changed],
    refreshed: [...refreshed],
    superseded,
  };
}

function attributesOf(name: string, observation: ObservationDefaults): ObservationAttributes {
  const entry = findProperty(name);
  if (!entry) throw new Error(`reading for unknown property ${name}`);
  return observationFor(entry, observation);
}

/** Whether a reading may be written given the registration it came from (see `Reading.registrationId`). */
export function fromCurrentRegistration(twin: TwinDocument, reading: Reading): boolean {
  if (reading.registrationId === undefined) return true;
  return twin.connection.state === 'connected' && twin.connection.registrationId === reading.registrationId;
}

/** The connection with `lastActivityTime` moved to the newest reading's time, if that is later (never backwards). */
function withActivity(connection: Connection, readings: readonly Reading[]): Connection {
  if (connection.state === 'never') return connection;
  let newest = connection.lastActivityTime;
  for (const reading of readings) if (newest === undefined || reading.time > newest) newest = reading.time;
  return newest === connection.lastActivityTime ? connection : { ...connection, lastActivityTime: newest };
}

/** The moment a property turns stale, or undefined when it cannot (unsupported, never observed). */
export function staleAt(property: DeviceProperty, graceSeconds: number): string | undefined {
  if (!property.supported) return undefined;
  const from = property.lastUpdatedTime ?? property.observedSince;
  if (from === undefined) return undefined;
  return new Date(Date.parse(from) + (property.pmax + graceSeconds) * 1000).toISOString();
}

/** The latest moment the next notify is due (lastUpdated + pmax), for readers. */
export function nextNotifyDue(property: DeviceProperty): string | undefined {
  const from = property.lastUpdatedTime ?? property.observedSince;
  if (!property.supported || from === undefined) return undefined;
  return new Date(Date.parse(from) + property.pmax * 1000).toISOString();
}

/**
 * The twin with its derived, indexed fields recomputed from the device properties: `nextStaleAt` (the
 * earliest staleAt among properties not already stale) and `staleProperties`. Every full write goes through it.
 */
export function withDerivedFields(twin: TwinDocument, graceSeconds: number): TwinDocument {
  let earliest: string | undefined;
  const staleProperties: string[] = [];
  for (const [name, property] of Object.entries(twin.deviceProperties)) {
    if (property.stale) {
      staleProperties.push(name);
      continue;
    }
    const at = staleAt(property, graceSeconds);
    if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
  }
  const { nextStaleAt: _previous, ...rest } = twin;
  const derived = { ...rest, staleProperties: staleProperties.sort() };
  return earliest === undefined ? derived : { ...derived, nextStaleAt: earliest };
}

/** The catalog entries a device announced in its registration, given the object links it listed. */
export function announcedProperties(
  entries: readonly CatalogEntry[],
  links: readonly { objectId: number; instanceId?: number; resourceId?: number }[],
): CatalogEntry[] {
  return entries.filter((e) =>
    links.some(
      (l) =>
        l.objectId === e.objectId &&
        (l.instanceId === undefined || l.instanceId === e.instanceId) &&
        (l.resourceId === undefined || l.resourceId === e.resourceId),
    ),
  );
}
