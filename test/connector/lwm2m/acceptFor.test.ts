import { acceptFor } from '../../../connector/lwm2m/acceptFor';
import { parseLinkFormat, registrationLinks } from '../../../connector/lwm2m/linkFormat';

const TEXT = 0;
const CBOR = 60;
const SENML_JSON = 110;
const SENML_CBOR = 112;
const TLV = 11542;
const LWM2M_JSON = 11543;
const LWM2M_CBOR = 11544;

describe('Accept for a read or observe of one resource', () => {
  it.each([
    // version, registration payload, Accept
    ['1.1', '</>;rt="oma.lwm2m";ct=112,</3/0>', SENML_CBOR],
    ['1.2', '</>;rt="oma.lwm2m";ct=60,</3/0>', CBOR],
    ['1.1', '</>;rt="oma.lwm2m";ct="112 110",</3/0>', SENML_CBOR],
    ['1.2', '</>;rt="oma.lwm2m";ct="60 112",</3/0>', CBOR],
    ['1.2', '</>;rt="oma.lwm2m";ct=11544,</3/0>', LWM2M_CBOR],
    ['1.1', '</>;rt="oma.lwm2m";ct=110,</3/0>', SENML_JSON],
    ['1.0', '</>;rt="oma.lwm2m";ct=11543,</3/0>', LWM2M_JSON],
    ['1.1', '</>;ct=112,</3/0>', SENML_CBOR], // root link without rt
    ['1.1', '</lwm2m>;rt="oma.lwm2m";ct=112,</lwm2m/3/0>', SENML_CBOR], // alternate root path
    ['1.1', '</>;rt="oma.lwm2m";ct="42 9999 112",</3/0>', SENML_CBOR], // opaque and unknown formats skipped
    ['1.0', '</>;rt="oma.lwm2m",</3/0>', TLV],
    ['1.0.2', '</1/0>,</3/0>', TLV],
    ['1.0', '</>;rt="oma.lwm2m";ct=42,</3/0>', TLV],
    ['1.1', '</>;rt="oma.lwm2m",</3/0>', TEXT],
    ['1.2', '</1/0>,</3/0>', TEXT],
    ['1.1', '</>;rt="oma.lwm2m";ct=abc,</3/0>', TEXT],
    ['1.1', '</3/0>;ct=112', TEXT], // ct on an object link is no announcement for the client
  ])('LwM2M %s registering %s gets Accept %d', (lwm2mVersion, payload, accept) => {
    const { contentFormats } = registrationLinks(parseLinkFormat(payload));
    expect(acceptFor({ lwm2mVersion, contentFormats })).toBe(accept);
  });
});
