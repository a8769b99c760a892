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
/** Largest tag or service property value, bytes: a string's UTF-8 length (numbers and booleans are always less). */
export const MAX_VALUE_BYTES = 8 * 1024;
/**
 * Largest the tags and service properties of one twin may be together, bytes of their UTF-8 JSON as stored (names
 * and the service properties' timestamps included). Keeps a twin far below Cosmos' 2 MB item limit, past which
 * every write to it, notifies included, would fail.
 */
export const MAX_CONTENT_BYTES = 64 * 1024;

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
      if (typeof entry === 'string' && Buffer.byteLength(entry, 'utf8') > MAX_VALUE_BYTES) {
        throw new TwinError(
          'InvalidRequest',
          `${field} has ${Buffer.byteLength(entry, 'utf8')} bytes; a value holds at most ${MAX_VALUE_BYTES}`,
          { field },
        );
      }
      (patch[section] as Record<string, unknown>)[name] = entry;
    }
  }
  return patch;
}

function isPlainValue(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** The twin after the patch; each changed service property is stamped with `now`. Enforces the twin's limits. */
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
  const patched = { ...twin, tags, serviceProperties };
  checkContentSize(patched, patch, twin);
  return patched;
}

type TwinContent = Pick<TwinDocument, 'tags' | 'serviceProperties'>;

function contentBytes(twin: TwinContent): number {
  return Buffer.byteLength(JSON.stringify({ tags: twin.tags, serviceProperties: twin.serviceProperties }), 'utf8');
}

/**
 * Refuses (400 `InvalidRequest`) a twin whose tags and service properties exceed `MAX_CONTENT_BYTES` together,
 * naming the section `patch` adds to (the larger one when it adds to both). A twin that was already over the limit
 * (`before`, stored before the limit existed) may still be patched as long as the patch does not grow it.
 */
export function checkContentSize(twin: TwinContent, patch: Partial<TwinPatch>, before?: TwinContent): void {
  const bytes = contentBytes(twin);
  if (bytes <= MAX_CONTENT_BYTES || (before !== undefined && bytes <= contentBytes(before))) return;
  const touched = (['tags', 'serviceProperties'] as const).filter((s) => Object.keys(patch[s] ?? {}).length > 0);
  const size = (section: 'tags' | 'serviceProperties') => Buffer.byteLength(JSON.stringify(twin[section]), 'utf8');
  const field = touched.sort((a, b) => size(b) - size(a))[0] ?? 'tags';
  throw new TwinError(
    'InvalidRequest',
    `tags and serviceProperties would take ${bytes} bytes; a twin holds at most ${MAX_CONTENT_BYTES}`,
    { field },
  );
}
