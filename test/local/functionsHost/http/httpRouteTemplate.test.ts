import { compareRoutePrecedence, HttpRouteTemplate } from '../../../../local/functionsHost/http/httpRouteTemplate';

describe('HttpRouteTemplate', () => {
  it('matches literal segments case-insensitively and names parameters', () => {
    const template = HttpRouteTemplate.parse('twins/{deviceId}/deviceProperties/{name}');
    expect(template.match('/twins/dev-1/deviceProperties/batteryLevel')).toEqual({
      deviceId: 'dev-1',
      name: 'batteryLevel',
    });
    expect(template.match('/TWINS/dev-1/DEVICEPROPERTIES/x')).toEqual({ deviceId: 'dev-1', name: 'x' });
    expect(template.match('/twins/dev-1')).toBeUndefined();
    expect(template.match('/twins/dev-1/deviceProperties/x/extra')).toBeUndefined();
  });

  it('URL-decodes parameter values and tolerates one trailing slash', () => {
    const template = HttpRouteTemplate.parse('twins/{deviceId}');
    expect(template.match('/twins/a%20b%2Fc')).toEqual({ deviceId: 'a b/c' });
    expect(template.match('/twins/x/')).toEqual({ deviceId: 'x' });
    expect(template.match('/twins/%E0%A4%A')).toEqual({ deviceId: '%E0%A4%A' });
  });

  it('leaves an absent optional parameter out and applies defaults', () => {
    const optional = HttpRouteTemplate.parse('jobs/{jobId?}');
    expect(optional.match('/jobs')).toEqual({});
    expect(optional.match('/jobs/j1')).toEqual({ jobId: 'j1' });
    const withDefault = HttpRouteTemplate.parse('pages/{page=1}');
    expect(withDefault.match('/pages')).toEqual({ page: '1' });
    expect(withDefault.match('/pages/7')).toEqual({ page: '7' });
  });

  it('gives a catch-all the rest of the path, slashes included, or nothing', () => {
    const template = HttpRouteTemplate.parse('files/{*path}');
    expect(template.match('/files/a/b/c.txt')).toEqual({ path: 'a/b/c.txt' });
    expect(template.match('/files')).toEqual({});
    expect(template.match('/other/a')).toBeUndefined();
  });

  it('applies inline constraints', () => {
    const int = HttpRouteTemplate.parse('items/{id:int}');
    expect(int.match('/items/42')).toEqual({ id: '42' });
    expect(int.match('/items/-3')).toEqual({ id: '-3' });
    expect(int.match('/items/abc')).toBeUndefined();
    expect(int.match('/items/99999999999')).toBeUndefined();
    const ranged = HttpRouteTemplate.parse('pages/{n:int:range(1,10)}');
    expect(ranged.match('/pages/10')).toEqual({ n: '10' });
    expect(ranged.match('/pages/11')).toBeUndefined();
    const guid = HttpRouteTemplate.parse('jobs/{id:guid}');
    expect(guid.match('/jobs/0b1e9a1c-7a3e-4c55-9f0e-3f1d2c3b4a5d')).toBeDefined();
    expect(guid.match('/jobs/not-a-guid')).toBeUndefined();
    const regex = HttpRouteTemplate.parse('codes/{code:regex(^[a-z]{{3}}$)}');
    expect(regex.match('/codes/abc')).toEqual({ code: 'abc' });
    expect(regex.match('/codes/abcd')).toBeUndefined();
    const optionalInt = HttpRouteTemplate.parse('v/{n:int?}');
    expect(optionalInt.match('/v')).toEqual({});
    expect(optionalInt.match('/v/x')).toBeUndefined();
  });

  it('matches complex segments', () => {
    const template = HttpRouteTemplate.parse('files/{name}.{ext}');
    expect(template.match('/files/report.pdf')).toEqual({ name: 'report', ext: 'pdf' });
    expect(template.match('/files/report')).toBeUndefined();
  });

  it('matches the empty route at the prefix itself', () => {
    const template = HttpRouteTemplate.parse('');
    expect(template.match('')).toEqual({});
    expect(template.match('/x')).toBeUndefined();
  });

  it('orders literals before constrained parameters before parameters before catch-alls', () => {
    const ordered = ['items/{*rest}', 'items/{name}', 'items/{id:int}', 'items/special']
      .map((text) => HttpRouteTemplate.parse(text))
      .sort(compareRoutePrecedence)
      .map((template) => template.template);
    expect(ordered).toEqual(['items/special', 'items/{id:int}', 'items/{name}', 'items/{*rest}']);
  });

  it('rejects malformed templates with an error naming the template', () => {
    expect(() => HttpRouteTemplate.parse('a/{x')).toThrow(/"a\/\{x".*unclosed/);
    expect(() => HttpRouteTemplate.parse('a/{x?}/b')).toThrow(/must be the last segment/);
    expect(() => HttpRouteTemplate.parse('a/{*x}/b')).toThrow(/must be the last segment/);
    expect(() => HttpRouteTemplate.parse('a/{x:bogus}')).toThrow(/unknown constraint "bogus"/);
    expect(() => HttpRouteTemplate.parse('a/{x}/{x}')).toThrow(/uses parameter "x" twice/);
    expect(() => HttpRouteTemplate.parse('a/{x}{y}')).toThrow(/two parameters/);
    expect(() => HttpRouteTemplate.parse('a/{1x}')).toThrow(/not a valid parameter/);
  });
});
