/**
 * How registration events change a twin. Pure: each returns the new twin, or undefined to leave it alone (the
 * store's `update` contract). A change for a registration that is no longer the twin's current one (the device
 * registered again, possibly with another connector instance) is ignored, so an old registration's expiry never
 * disconnects a newer one.
 */
import { CatalogEntry, ObservationDefaults, observationFor } from '../shared/catalog';
import { Connection, DeviceProperty, TwinDocument, observedProperty } from '../shared/twin';

export interface ConnectedInfo {
  registrationId: string;
  lifetime: number;
  binding: string;
  lwm2mVersion: string;
  connectorId: string;
  connectorUrl: string;
  /** Readable catalog entries the device announced. */
  announced: readonly CatalogEntry[];
  observation: ObservationDefaults;
  /** ISO time. */
  now: string;
  /** Queue mode only: until when the device is awake (ISO); absent for a device not in queue mode. */
  awakeUntil?: string;
}

/** The twin of a device that just registered: connected, and an entry per announced property (values kept). */
export function connectedTwin(twin: TwinDocument, info: ConnectedInfo): TwinDocument {
  const connection: Connection = {
    state: 'connected',
    since: info.now,
    lastActivityTime: info.now,
    lifetime: info.lifetime,
    binding: info.binding,
    lwm2mVersion: info.lwm2mVersion,
    registrationId: info.registrationId,
    connectorId: info.connectorId,
    connectorUrl: info.connectorUrl,
    ...queueModeFields(info.awakeUntil),
  };
  return { ...twin, connection, deviceProperties: withObserved(twin, info.announced, info.observation, info.now) };
}

/** Adds entries for properties announced by an Update's new object list (values kept). */
export function observedTwin(
  twin: TwinDocument,
  registrationId: string,
  announced: readonly CatalogEntry[],
  observation: ObservationDefaults,
  now: string,
): TwinDocument | undefined {
  if (twin.connection.registrationId !== registrationId) return undefined;
  return { ...twin, deviceProperties: withObserved(twin, announced, observation, now) };
}

function withObserved(
  twin: TwinDocument,
  announced: readonly CatalogEntry[],
  observation: ObservationDefaults,
  now: string,
): Record<string, DeviceProperty> {
  const deviceProperties = { ...twin.deviceProperties };
  for (const entry of announced) {
    const attributes = observationFor(entry, observation);
    const existing = deviceProperties[entry.name];
    deviceProperties[entry.name] = existing
      ? { ...existing, pmin: attributes.pmin, pmax: attributes.pmax, supported: true, observedSince: now }
      : observedProperty(attributes, now);
  }
  return deviceProperties;
}

/** After an Update: activity time, lifetime, binding and (queue mode) awake time refreshed. */
export function renewedTwin(
  twin: TwinDocument,
  registrationId: string,
  change: { lifetime: number; binding: string; now: string; awakeUntil?: string },
): TwinDocument | undefined {
  if (twin.connection.registrationId !== registrationId || twin.connection.state !== 'connected') return undefined;
  const { queueMode: _queueMode, awakeUntil: _awakeUntil, ...connection } = twin.connection;
  return {
    ...twin,
    connection: {
      ...connection,
      lastActivityTime: change.now,
      lifetime: change.lifetime,
      binding: change.binding,
      ...queueModeFields(change.awakeUntil),
    },
  };
}

/** `queueMode` and `awakeUntil` for a queue-mode device (the one given `awakeUntil`); nothing for any other. */
function queueModeFields(awakeUntil: string | undefined): Pick<Connection, 'queueMode' | 'awakeUntil'> {
  return awakeUntil === undefined ? {} : { queueMode: true, awakeUntil };
}

/** After a De-register, a lifetime expiry or a shutdown: disconnected since `now`. */
export function disconnectedTwin(twin: TwinDocument, registrationId: string, now: string): TwinDocument | undefined {
  if (twin.connection.registrationId !== registrationId || twin.connection.state !== 'connected') return undefined;
  return { ...twin, connection: { ...twin.connection, state: 'disconnected', since: now } };
}

/** The device answered observe with 4.04: the property is unsupported (never flagged stale). */
export function unsupportedPropertyTwin(
  twin: TwinDocument,
  registrationId: string,
  name: string,
): TwinDocument | undefined {
  const property = twin.deviceProperties[name];
  if (twin.connection.registrationId !== registrationId || !property || !property.supported) return undefined;
  return {
    ...twin,
    deviceProperties: {
      ...twin.deviceProperties,
      [name]: { ...property, supported: false, stale: false, staleSince: null, staleReason: null },
    },
  };
}
