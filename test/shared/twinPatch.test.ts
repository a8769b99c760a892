import { isTwinError } from '../../shared/errors';
import { newTwin } from '../../shared/twin';
import { applyTwinPatch, parseTwinPatch } from '../../shared/twinPatch';

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
});
