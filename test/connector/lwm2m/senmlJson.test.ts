import { decodeLwm2mJson } from '../../../connector/lwm2m/lwm2mJson';
import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';
import { decodeSenmlJson } from '../../../connector/lwm2m/senmlJson';

/** LwM2M 1.1 Transport §7.4.4 example: Read /3/0 in SenML JSON (abridged to the single-instance resources). */
const SENML_EXAMPLE = `[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},
 {"n":"1","vs":"Lightweight M2M Client"},{"n":"2","vs":"345000123"},{"n":"3","vs":"1.0"},
 {"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"7/0","v":3800},{"n":"7/1","v":5000},
 {"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},
 {"n":"14","vs":"+02:00"},{"n":"16","vs":"U"}]`;

/** LwM2M 1.0 §6.4.4 example: the same read in the old LwM2M JSON format. */
const LWM2M_JSON_EXAMPLE = `{"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},{"n":"1","sv":"Lightweight M2M Client"},
 {"n":"2","sv":"345000123"},{"n":"3","sv":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"7/0","v":3800},
 {"n":"7/1","v":5000},{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},
 {"n":"14","sv":"+02:00"},{"n":"16","sv":"U"}]}`;

describe('SenML JSON and the LwM2M 1.0 JSON format', () => {
  it('decodes the SenML spec example, resolving base names', () => {
    const values = new Map(decodeSenmlJson(Buffer.from(SENML_EXAMPLE)).map((v) => [v.path, v.value]));
    expect(values.get('/3/0/0')).toEqual({ type: 'string', string: 'Open Mobile Alliance' });
    expect(values.get('/3/0/9')).toEqual({ type: 'number', number: 100 });
    expect(values.get('/3/0/13')).toEqual({ type: 'number', number: 1367491215 });
    expect(values.get('/3/0/7/1')).toEqual({ type: 'number', number: 5000 });
    expect(values.size).toBe(14);
  });

  it('decodes booleans, data and a full name without base', () => {
    const values = decodeSenmlJson(Buffer.from('[{"n":"/1/0/6","vb":true},{"n":"/3/0/22","vd":"AQI"}]'));
    expect(values[0]).toEqual({ path: '/1/0/6', value: { type: 'boolean', boolean: true } });
    expect(values[1].value).toEqual({ type: 'bytes', bytes: Buffer.from([1, 2]) });
  });

  it('decodes the LwM2M JSON spec example, and names relative to the request path without bn', () => {
    const values = new Map(decodeLwm2mJson(Buffer.from(LWM2M_JSON_EXAMPLE), '/3/0').map((v) => [v.path, v.value]));
    expect(values.get('/3/0/14')).toEqual({ type: 'string', string: '+02:00' });
    expect(values.get('/3/0/9')).toEqual({ type: 'number', number: 100 });
    const relative = decodeLwm2mJson(Buffer.from('{"e":[{"n":"","v":42}]}'), '/3/0/9');
    expect(relative).toEqual([{ path: '/3/0/9', value: { type: 'number', number: 42 } }]);
  });

  it.each([
    ['not JSON', '[{"bn":'],
    ['not an array', '{"bn":"/3/0/"}'],
    ['a record that is not an object', '[1]'],
    ['several values in a record', '[{"n":"/3/0/9","v":1,"vs":"1"}]'],
    ['a name that is not a path', '[{"n":"battery","v":1}]'],
    ['a non-numeric v', '[{"n":"/3/0/9","v":"1"}]'],
    ['invalid UTF-8', Buffer.from([0x5b, 0xff, 0x5d])],
  ])('refuses SenML with %s', (_what, payload) => {
    expect(() => decodeSenmlJson(Buffer.isBuffer(payload) ? payload : Buffer.from(payload))).toThrow(Lwm2mPayloadError);
  });

  it.each([
    ['no e array', '{"bn":"/3/0/"}'],
    ['an entry without a value', '{"e":[{"n":"9"}]}'],
    ['a bad base name', '{"bn":5,"e":[]}'],
  ])('refuses LwM2M JSON with %s', (_what, payload) => {
    expect(() => decodeLwm2mJson(Buffer.from(payload), '/3/0')).toThrow(Lwm2mPayloadError);
  });
});
