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
    expect(() => decodePropertyValue(entry('batteryLevel'), 60, Buffer.from([0xa0]))).toThrow('content format 60');
    expect(() => decodePropertyValue(entry('batteryLevel'), 110, Buffer.from('[{"n":"/3/0/10","v":1}]'))).toThrow(
      'no value for /3/0/9',
    );
    expect(() => decodePropertyValue(entry('manufacturer'), 0, Buffer.from([0xc3, 0x28]))).toThrow('UTF-8');
  });
});
