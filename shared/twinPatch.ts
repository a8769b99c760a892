/**
 * The caller-writable part of a twin: `tags` and `serviceProperties`, changed by JSON merge patch (RFC 7396)
 * of plain values. Device properties belong to the device; a deep-write job is the way to change them.
 */
import { TwinError } from './errors';
import { ServiceProperty, TagValue, TwinDocument } from './twin';

export interface TwinPatch {
  /** null removes the tag. */
  tags: Record<string, TagValue | null>;
  /** null removes the property. */
  serviceProperties: Record<string, unknown>;
}

/** Tag and service property names: they are query parameters and JSON paths, so keep them plain. */
export const KEY_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
export const MAX_TAGS = 64;
export const MAX_SERVICE_PROPERTIES = 128;

const PATCHABLE = new Set(['tags', 'serviceProperties']);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates a patch (or a provisioning body, with `allowNull` false). Field names in errors are JSON paths
 * such as `tags.site`, so the caller knows what to fix.
 */
export function parseTwinPatch(body: unknown, options: { allowNull: boolean } = { allowNull: true }): TwinPatch {
  if (!isPlainObject(body)) {
    throw new TwinError('InvalidRequest', 'The body must be a JSON object', { field: '' });
  }
  for (const key of Object.keys(body)) {
    if (key === 'deviceProperties') {
      throw new TwinError(
        'DevicePropertiesReadOnly',
        'Device properties belong to the device: schedule a writeDeviceProperty job (POST /api/jobs) to change one',
        { field: 'deviceProperties' },
      );
    }
    if (!PATCHABLE.has(key)) {
      throw new TwinError('InvalidRequest', `Field "${key}" cannot be set; only tags and serviceProperties can`, {
        field: key,
      });
    }
  }
  const patch: TwinPatch = { tags: {}, serviceProperties: {} };
  for (const section of ['tags', 'serviceProperties'] as const) {
    const value = body[section];
    if (value === undefined) continue;
    if (!isPlainObject(value)) {
      throw new TwinError('InvalidRequest', `${section} must be an object`, { field: section });
    }
    for (const [name, entry] of Object.entries(value)) {
      const field = `${section}.${name}`;
      if (!KEY_PATTERN.test(name)) {
        throw new TwinError('InvalidRequest', `${field}: names are 1-64 of [A-Za-z0-9_.-]`, { field });
      }
      if (entry === null && !options.allowNull) {
        throw new TwinError('InvalidRequest', `${field} is null; leave it out instead`, { field });
      }
      if (section === 'tags' && entry !== null && !['string', 'number', 'boolean'].includes(typeof entry)) {
        throw new TwinError('InvalidRequest', `${field} must be a string, number, boolean or null`, { field });
      }
      if (section === 'serviceProperties' && entry !== null && !isPlainValue(entry)) {
        throw new TwinError('InvalidRequest', `${field} must be a string, number, boolean or null`, { field });
      }
      if (typeof entry === 'number' && !Number.isFinite(entry)) {
        throw new TwinError('InvalidRequest', `${field} must be a finite number`, { field });
      }
      (patch[section] as Record<string, unknown>)[name] = entry;
    }
  }
  return patch;
}

function isPlainValue(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** The twin after the patch; each changed service property is stamped with `now`. */
export function applyTwinPatch(twin: TwinDocument, patch: TwinPatch, now: string): TwinDocument {
  const tags = { ...twin.tags };
  for (const [name, value] of Object.entries(patch.tags)) {
    if (value === null) delete tags[name];
    else tags[name] = value;
  }
  const serviceProperties: Record<string, ServiceProperty> = { ...twin.serviceProperties };
  for (const [name, value] of Object.entries(patch.serviceProperties)) {
    if (value === null) delete serviceProperties[name];
    else if (serviceProperties[name]?.value !== value) serviceProperties[name] = { value, lastUpdatedTime: now };
  }
  if (Object.keys(tags).length > MAX_TAGS) {
    throw new TwinError('InvalidRequest', `A twin holds at most ${MAX_TAGS} tags`, { field: 'tags' });
  }
  if (Object.keys(serviceProperties).length > MAX_SERVICE_PROPERTIES) {
    throw new TwinError('InvalidRequest', `A twin holds at most ${MAX_SERVICE_PROPERTIES} service properties`, {
      field: 'serviceProperties',
    });
  }
  return { ...twin, tags, serviceProperties };
}
