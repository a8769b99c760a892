import { Lwm2mPayloadError } from '../../../connector/lwm2m/lwm2mPayloadError';
import { parseLinkFormat, registrationLinks } from '../../../connector/lwm2m/linkFormat';

describe('link format (RFC 6690) in registrations', () => {
  it('parses the LwM2M 1.1 registration example with parameters and quoted values', () => {
    const links = parseLinkFormat(
      '</>;rt="oma.lwm2m";ct=110,</1/0>,</1/1>,</3/0>;ver=1.1,</5/0>, </3303>;title="a, \\"b\\""',
    );
    expect(links).toHaveLength(6);
    expect(links[0]).toEqual({ target: '/', params: { rt: 'oma.lwm2m', ct: '110' } });
    expect(links[5].params.title).toBe('a, "b"');
    expect(registrationLinks(links)).toEqual({
      rootPath: '',
      contentFormats: [110],
      objects: [
        { objectId: 1, instanceId: 0 },
        { objectId: 1, instanceId: 1 },
        { objectId: 3, instanceId: 0 },
        { objectId: 5, instanceId: 0 },
        { objectId: 3303 },
      ],
    });
  });

  it('honours an alternate root path and resource-level links', () => {
    const links = parseLinkFormat('</lwm2m>;rt="oma.lwm2m",</lwm2m/3/0/9>,</lwm2m/5>,</other/3/0>');
    expect(registrationLinks(links)).toEqual({
      rootPath: 'lwm2m',
      objects: [{ objectId: 3, instanceId: 0, resourceId: 9 }, { objectId: 5 }],
    });
  });

  it('reads the content formats announced by ct on the root link, in order', () => {
    expect(registrationLinks(parseLinkFormat('</>;rt="oma.lwm2m";ct=112,</3/0>')).contentFormats).toEqual([112]);
    expect(registrationLinks(parseLinkFormat('</>;rt="oma.lwm2m";ct="60 110 60",</3/0>')).contentFormats).toEqual([
      60, 110,
    ]);
    expect(registrationLinks(parseLinkFormat('</>;ct="x 70000 112"')).contentFormats).toEqual([112]);
    expect(registrationLinks(parseLinkFormat('</>;rt="oma.lwm2m",</3/0>;ct=112'))).not.toHaveProperty('contentFormats');
  });

  it('accepts an empty body and ignores links that are not object paths', () => {
    expect(parseLinkFormat('')).toEqual([]);
    expect(registrationLinks(parseLinkFormat('</a/b>,</3/x>,</99999>,</1/2/3/4>')).objects).toEqual([]);
  });

  it.each([['</3/0'], ['3/0'], ['</3/0>;'], ['</3/0>;a="x'], ['</3/0> </5/0>']])('refuses %s', (text) => {
    expect(() => parseLinkFormat(text)).toThrow(Lwm2mPayloadError);
  });
});
