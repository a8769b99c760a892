/**
 * The resources a simulated device has: every catalog resource of objects 1 (LwM2M Server), 3 (Device) and
 * 5 (Firmware Update), plus the few mandatory LwM2M resources of those objects that the twin does not
 * mirror. The catalog is the source of truth for the shared ones; nothing of it is copied here.
 */
import { CATALOG, CatalogEntry, PropertyType, PropertyValue, validateValue } from '../shared/catalog';
import { BINDING_UDP } from './protocol';

export type ResourceType = PropertyType | 'opaque';
export type ResourceValue = PropertyValue | Buffer;

export interface ResourceDefinition {
  /** The catalog name, or the LwM2M name for a resource the catalog does not hold. */
  readonly name: string;
  /** `/object/instance/resource`. */
  readonly path: string;
  readonly objectId: number;
  readonly instanceId: number;
  readonly resourceId: number;
  readonly readable: boolean;
  readonly writable: boolean;
  readonly executable: boolean;
  readonly type: ResourceType;
  /** Present when the twin knows the resource: its value rules apply to writes. */
  readonly catalogEntry?: CatalogEntry;
}

/** The LwM2M objects the simulator implements, each with the single instance 0. */
export const SIMULATED_OBJECT_IDS: readonly number[] = [1, 3, 5];

type Ops = 'R' | 'W' | 'RW' | 'E';

function extra(name: string, path: string, ops: Ops, type: ResourceType): ResourceDefinition {
  const [objectId, instanceId, resourceId] = path.split('/').slice(1).map(Number);
  return Object.freeze({
    name,
    path,
    objectId,
    instanceId,
    resourceId,
    readable: ops === 'R' || ops === 'RW',
    writable: ops === 'W' || ops === 'RW',
    executable: ops === 'E',
    type,
  });
}

/** Mandatory resources of objects 1, 3 and 5 (LwM2M 1.1 registry) that the catalog leaves out. */
const NON_CATALOG_RESOURCES: readonly ResourceDefinition[] = [
  extra('shortServerId', '/1/0/0', 'R', 'integer'),
  extra('binding', '/1/0/7', 'RW', 'string'),
  extra('registrationUpdateTrigger', '/1/0/8', 'E', 'none'),
  extra('errorCode', '/3/0/11', 'R', 'integer'),
  extra('supportedBindingAndModes', '/3/0/16', 'R', 'string'),
  extra('firmwarePackage', '/5/0/0', 'W', 'opaque'),
  extra('firmwareUpdateDeliveryMethod', '/5/0/9', 'R', 'integer'),
];

/** Every simulated resource, ordered by object, instance and resource id. */
export const DEVICE_RESOURCES: readonly ResourceDefinition[] = Object.freeze(
  [
    ...CATALOG.filter((entry) => SIMULATED_OBJECT_IDS.includes(entry.objectId)).map((entry): ResourceDefinition =>
      Object.freeze({
        name: entry.name,
        path: entry.path,
        objectId: entry.objectId,
        instanceId: entry.instanceId,
        resourceId: entry.resourceId,
        readable: entry.readable,
        writable: entry.writable,
        executable: entry.executable,
        type: entry.type,
        catalogEntry: entry,
      }),
    ),
    ...NON_CATALOG_RESOURCES,
  ].sort((a, b) => a.objectId - b.objectId || a.instanceId - b.instanceId || a.resourceId - b.resourceId),
);

const byPath = new Map(DEVICE_RESOURCES.map((definition) => [definition.path, definition]));

export function findResource(path: string): ResourceDefinition | undefined {
  return byPath.get(path);
}

/** A parsed LwM2M path: object, optionally instance and resource (resource instances are not simulated). */
export interface Lwm2mPath {
  readonly objectId: number;
  readonly instanceId?: number;
  readonly resourceId?: number;
  readonly resourceInstanceId?: number;
}

/** Parses Uri-Path segments (`['3', '0', '9']`); undefined when a segment is not an id 0-65535. */
export function parsePath(segments: readonly string[]): Lwm2mPath | undefined {
  if (segments.length < 1 || segments.length > 4) return undefined;
  const ids = segments.map((segment) => (/^(0|[1-9]\d{0,4})$/.test(segment) ? Number(segment) : NaN));
  if (ids.some((id) => !(id <= 0xffff))) return undefined;
  const [objectId, instanceId, resourceId, resourceInstanceId] = ids;
  return { objectId, instanceId, resourceId, resourceInstanceId };
}

export function formatPath(path: Lwm2mPath): string {
  return (
    '/' +
    [path.objectId, path.instanceId, path.resourceId, path.resourceInstanceId]
      .filter((id) => id !== undefined)
      .join('/')
  );
}

/** The resources at or under `path` (all of an object, of an instance, or the one resource). */
export function resourcesUnder(path: Lwm2mPath): ResourceDefinition[] {
  if (path.resourceInstanceId !== undefined) return [];
  return DEVICE_RESOURCES.filter(
    (definition) =>
      definition.objectId === path.objectId &&
      (path.instanceId === undefined || definition.instanceId === path.instanceId) &&
      (path.resourceId === undefined || definition.resourceId === path.resourceId),
  );
}

/** True when `path` names an object or instance the device has (resource paths: see `findResource`). */
export function hasObjectOrInstance(path: Lwm2mPath): boolean {
  return path.resourceId === undefined && resourcesUnder(path).length > 0;
}

export type ResourceValueCheck = { ok: true; value: ResourceValue } | { ok: false; reason: string };

/**
 * Checks a value for a resource: the catalog's rules for catalog resources, the LwM2M type otherwise.
 * The reason names the resource and what was expected.
 */
export function validateResourceValue(definition: ResourceDefinition, value: unknown): ResourceValueCheck {
  if (definition.catalogEntry) return validateValue(definition.catalogEntry, value);
  switch (definition.type) {
    case 'opaque':
      return Buffer.isBuffer(value)
        ? { ok: true, value }
        : { ok: false, reason: `${definition.name} must be opaque bytes (a Buffer)` };
    case 'integer':
    case 'time':
      return typeof value === 'number' && Number.isSafeInteger(value)
        ? { ok: true, value }
        : { ok: false, reason: `${definition.name} must be an integer` };
    case 'string':
      if (typeof value !== 'string') return { ok: false, reason: `${definition.name} must be a string` };
      if (definition.name === 'binding' && value !== BINDING_UDP) {
        return {
          ok: false,
          reason: `binding must be "${BINDING_UDP}" (this device supports UDP only); got "${value}"`,
        };
      }
      return { ok: true, value };
    case 'none':
      return { ok: false, reason: `${definition.name} is an operation, not a value` };
  }
}
