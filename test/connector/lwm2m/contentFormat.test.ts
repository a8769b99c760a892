import { findProperty } from '../../../shared/catalog';
import { decodePropertyValue } from '../../../connector/lwm2m/contentFormat';
import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';

const entry = (name: string) => {
  const found = findProperty(name);
  if (!found) throw new Error(name);
  return found;
};

describe('payloads to typed property values', () => {
  it('types text by the catalog', () => {
    expect(decodePropertyValue(entry('batteryLevel'), 0, Buffer.from('87'))).toBe(87);
    expect(decodePropertyValue(entry('currentTime'), undefined, Buffer.from('1367491215'))).toBe(1367491215);
    expect(decodePropertyValue(entry('timezone'), 0, Buffer.from('Europe/Paris'))).toBe('Europe/Paris');
    expect(decodePropertyValue(entry('deviceType'), 42, Buffer.from('meter'))).toBe('meter');
  });

  it('refuses values of the wrong type, unknown formats and payloads without the resource', () => {
    expect(() => decodePropertyValue(entry('batteryLevel'), 0, Buffer.from('8.7'))).toThrow(Lwm2mPayloadError);
    expect(() => decodePropertyValue(entry('batteryLevel'), 110, Buffer.from('[{"n":"/3/0/9","vs":"x"}]'))).toThrow(
      'must be an integer',
    );
    expect(() => decodePropertyValue(entry('batteryLevel'), 50, Buffer.from('[]'))).toThrow('content format 50');
    expect(() => decodePropertyValue(entry('batteryLevel'), 110, Buffer.from('[{"n":"/3/0/10","v":1}]'))).toThrow(
      'no value for /3/0/9',
    );
    expect(() => decodePropertyValue(entry('manufacturer'), 0, Buffer.from([0xc3, 0x28]))).toThrow('UTF-8');
  });

  it('refuses readings the catalog refuses as writes: out of range, too long, wrong format', () => {
    const tlvString = (id: number, text: string) => {
      const value = Buffer.from(text);
      // TLV resource with a 16-bit length: type 0b11_0_10_000 | id 8-bit.
      return Buffer.concat([Buffer.from([0xd0, id, value.length >> 8, value.length & 0xff]), value]);
    };
    const cases: [string, number | undefined, Buffer, string][] = [
      ['batteryLevel', 0, Buffer.from('101'), 'from 0 to 100'],
      ['batteryLevel', 110, Buffer.from('[{"n":"/3/0/9","v":-1}]'), 'from 0 to 100'],
      ['batteryStatus', 11542, Buffer.from([0xc1, 20, 7]), 'from 0 to 6'],
      ['manufacturer', 0, Buffer.from('m'.repeat(60_000)), 'at most 255'],
      ['manufacturer', 11542, tlvString(0, 'm'.repeat(256)), 'at most 255'],
      ['deviceType', 110, Buffer.from(`[{"n":"/3/0/17","vs":"${'d'.repeat(300)}"}]`), 'at most 255'],
      ['utcOffset', 0, Buffer.from('UTC+1'), '+HH:MM'],
      ['timezone', 0, Buffer.from('Mars/Olympus'), 'IANA'],
    ];
    for (const [name, format, payload, reason] of cases) {
      let error: unknown;
      try {
        decodePropertyValue(entry(name), format, payload);
      } catch (caught) {
        error = caught;
      }
      expect({ name, reason, refused: error instanceof Lwm2mPayloadError }).toEqual({ name, reason, refused: true });
      expect((error as Error).message).toContain(reason);
      expect((error as Error).message).toContain(name);
    }
    expect(decodePropertyValue(entry('manufacturer'), 0, Buffer.from('m'.repeat(255)))).toHaveLength(255);
    expect(decodePropertyValue(entry('batteryLevel'), 0, Buffer.from('100'))).toBe(100);
  });
});
