import { isTwinError } from '../../shared/errors';
import { newTwin } from '../../shared/twin';
import { MAX_CONTENT_BYTES, MAX_VALUE_BYTES, applyTwinPatch, parseTwinPatch } from '../../shared/twinPatch';

const errorOf = (body: unknown) => {
  try {
    parseTwinPatch(body);
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
};

describe('twin merge patch', () => {
  it('merges tags, stamps changed service properties, removes with null', () => {
    const twin = newTwin('d', { tags: { a: 1, b: 2 }, serviceProperties: { keep: 'x', drop: 'y' } }, 'T0');
    const patched = applyTwinPatch(
      twin,
      parseTwinPatch({ tags: { b: null, c: true }, serviceProperties: { keep: 'x', drop: null, customerId: '123' } }),
      'T1',
    );
    expect(patched.tags).toEqual({ a: 1, c: true });
    expect(patched.serviceProperties).toEqual({
      keep: { value: 'x', lastUpdatedTime: 'T0' },
      customerId: { value: '123', lastUpdatedTime: 'T1' },
    });
  });

  it('sends device property changes to the job API with 409', () => {
    const error = errorOf({ deviceProperties: { timezone: 'UTC' } });
    expect(isTwinError(error, 'DevicePropertiesReadOnly')).toBe(true);
  });

  it('names the field of anything else it refuses', () => {
    const cases: [unknown, string][] = [
      [{ version: 3 }, 'version'],
      [{ tags: [] }, 'tags'],
      [{ tags: { 'has space': 1 } }, 'tags.has space'],
      [{ tags: { a: { nested: true } } }, 'tags.a'],
      [{ serviceProperties: { a: [1] } }, 'serviceProperties.a'],
    ];
    for (const [body, field] of cases) {
      const error = errorOf(body);
      expect(isTwinError(error, 'InvalidRequest')).toBe(true);
      expect((error as { extensions: { field: string } }).extensions.field).toBe(field);
    }
  });

  it('limits a value to 8 KB of UTF-8 and names it', () => {
    const cases: [unknown, string | undefined][] = [
      [{ tags: { a: 'x'.repeat(MAX_VALUE_BYTES) } }, undefined],
      [{ tags: { a: 'x'.repeat(MAX_VALUE_BYTES + 1) } }, 'tags.a'],
      [{ tags: { a: 'é'.repeat(MAX_VALUE_BYTES / 2) } }, undefined],
      [{ tags: { a: 'é'.repeat(MAX_VALUE_BYTES / 2 + 1) } }, 'tags.a'],
      [{ serviceProperties: { note: '€'.repeat(3000) } }, 'serviceProperties.note'],
      [{ serviceProperties: { n: Number.MAX_VALUE, b: true } }, undefined],
    ];
    for (const [body, field] of cases) {
      const error = field === undefined ? undefined : errorOf(body);
      if (field === undefined) expect(() => parseTwinPatch(body)).not.toThrow();
      else
        expect({
          code: (error as { code: string }).code,
          field: (error as { extensions: { field: string } }).extensions.field,
        }).toEqual({ code: 'InvalidRequest', field });
    }
  });

  it('limits a twin to 64 KB of tags and service properties, naming the section the patch grows', () => {
    const value = 'x'.repeat(MAX_VALUE_BYTES);
    const tags = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`t${i}`, value]));
    const full = applyTwinPatch(
      newTwin('d', { tags }, 'T0'),
      parseTwinPatch({ tags: { last: 'x'.repeat(6000) } }),
      'T1',
    );
    const refuse = (body: unknown) => {
      try {
        applyTwinPatch(full, parseTwinPatch(body), 'T2');
      } catch (error) {
        return isTwinError(error, 'InvalidRequest') ? error.extensions.field : error;
      }
      return 'accepted';
    };
    expect(refuse({ tags: { more: value } })).toBe('tags');
    expect(refuse({ serviceProperties: { more: value } })).toBe('serviceProperties');
    expect(refuse({ tags: { t0: null }, serviceProperties: { more: value } })).toBe('accepted');
    expect(refuse({ tags: { last: 'shorter' } })).toBe('accepted');
    // A twin stored before the limit existed, already over it: patches that do not grow it still pass.
    const oversized = { ...full, tags: { ...full.tags, t7: value, t8: value } };
    expect(JSON.stringify(oversized.tags).length).toBeGreaterThan(MAX_CONTENT_BYTES);
    expect(applyTwinPatch(oversized, parseTwinPatch({ tags: { t8: null } }), 'T2').tags.t8).toBeUndefined();
    expect(() => applyTwinPatch(oversized, parseTwinPatch({ tags: { t9: 1 } }), 'T2')).toThrow('at most 65536');
  });
});
