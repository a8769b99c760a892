import {
  CATALOG,
  MAX_STRING_LENGTH,
  TWIN_PROPERTIES,
  findProperty,
  findPropertyByPath,
  validateValue,
} from '../../shared/catalog';

describe('the property catalog', () => {
  it('has every resource of the design once, by name and by path', () => {
    expect(CATALOG).toHaveLength(24);
    expect(new Set(CATALOG.map((e) => e.name)).size).toBe(CATALOG.length);
    expect(new Set(CATALOG.map((e) => e.path)).size).toBe(CATALOG.length);
    expect(findPropertyByPath('/3/0/9')?.name).toBe('batteryLevel');
    expect(findProperty('timezone')).toMatchObject({ objectId: 3, instanceId: 0, resourceId: 15, writable: true });
  });

  it('mirrors only readable properties in the twin', () => {
    const names = TWIN_PROPERTIES.map((e) => e.name);
    expect(names).toContain('batteryLevel');
    expect(names).not.toContain('reboot');
    expect(names).not.toContain('firmwarePackageUri');
    expect(findProperty('firmwareUpdateState')?.propertyClass).toBe('firmwareUpdate');
    expect(findProperty('registrationLifetime')?.propertyClass).toBe('server');
  });

  it('bounds every string property: 255 characters unless the entry says less', () => {
    for (const entry of CATALOG.filter((e) => e.type === 'string')) {
      expect({ name: entry.name, bounded: (entry.maxLength ?? Infinity) <= MAX_STRING_LENGTH }).toEqual({
        name: entry.name,
        bounded: true,
      });
    }
    expect(MAX_STRING_LENGTH).toBe(255);
    expect(findProperty('timezone')?.maxLength).toBe(64);
    expect(findProperty('batteryLevel')).not.toHaveProperty('maxLength');
  });
});

describe('validateValue', () => {
  const check = (name: string, value: unknown) => validateValue(findProperty(name)!, value);

  it('accepts values of the right type and range', () => {
    expect(check('timezone', 'Europe/Paris')).toEqual({ ok: true, value: 'Europe/Paris' });
    expect(check('utcOffset', '-05:30')).toEqual({ ok: true, value: '-05:30' });
    expect(check('currentTime', 1_790_000_000)).toEqual({ ok: true, value: 1_790_000_000 });
    expect(check('registrationLifetime', 300)).toEqual({ ok: true, value: 300 });
    expect(check('firmwarePackageUri', 'coap://fw.example/v2.bin')).toMatchObject({ ok: true });
  });

  it('names the property and what was expected when it refuses', () => {
    const cases: [string, unknown, string][] = [
      ['timezone', 42, 'timezone must be a string'],
      ['timezone', 'Mars/Olympus', 'IANA'],
      ['utcOffset', '5:00', '+HH:MM'],
      ['batteryLevel', 101, 'from 0 to 100'],
      ['batteryLevel', 5.5, 'an integer'],
      ['currentTime', '2026-01-01', 'Unix seconds'],
      ['registrationLifetime', 0, 'from 1'],
      ['firmwarePackageUri', 'x'.repeat(256), 'at most 255'],
      ['manufacturer', 'x'.repeat(60_000), 'at most 255'],
      ['firmwarePackageVersion', 'v'.repeat(256), 'at most 255'],
      ['reboot', 1, 'operation'],
    ];
    for (const [name, value, expected] of cases) {
      const result = check(name, value);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.reason).toContain(expected);
      if (!result.ok) expect(result.reason).toContain(name);
    }
  });
});
