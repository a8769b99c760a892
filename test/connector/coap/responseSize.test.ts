/**
 * What a device sees when the connector's answer would echo more than a CoAP message holds (RFC 7252 §4.6: 1152
 * bytes): the client error it earned, with its diagnostic cut to fit, never a 5.00.
 */
import { Code, OptionNumber, codeClass, stringOption } from '../../../connector/coap/coapMessage';
import { ConnectorHarness } from '../support/connectorHarness';
import { TestDevice } from '../support/testDevice';

describe('connector responses within the CoAP message size', () => {
  const harness = new ConnectorHarness();
  let device: TestDevice;
  /** Sizes of the datagrams the connector sent the device, in arrival order. */
  const sizes: number[] = [];

  beforeAll(async () => {
    await harness.start({}, 'response-size-test');
    device = await TestDevice.start(harness.server);
    device.socket.on('message', (datagram) => sizes.push(datagram.length));
  });
  afterAll(async () => {
    await device.close();
    await harness.close();
  });

  it('answers 600 Uri-Path segments under /rd with 4.04 in at most 1152 bytes, the path echo cut', async () => {
    const segments = ['rd', ...Array.from({ length: 599 }, (_, i) => `s${i % 10}`)];
    const response = await device.request(
      Code.POST,
      segments.map((s) => stringOption(OptionNumber.URI_PATH, s)),
    );
    expect(response.code).toBe(Code.NOT_FOUND);
    expect(sizes.at(-1)).toBeLessThanOrEqual(1152);
    const diagnostic = response.payload.toString('utf8');
    expect(diagnostic.startsWith('no resource /rd/s0/s1/s2/')).toBe(true);
    expect(diagnostic.length).toBeLessThan(`no resource /${segments.join('/')}`.length);
  });

  it('answers an 1,100-character lwm2m= with a client error, not 5.00', async () => {
    const { response } = await device.register('response-size-device', { lwm2m: `1.${'9'.repeat(1098)}` });
    expect(codeClass(response.code)).toBe(4);
    expect(response.code).toBe(Code.PRECONDITION_FAILED);
    expect(sizes.at(-1)).toBeLessThanOrEqual(1152);
    expect(response.payload.toString('utf8')).toMatch(/^LwM2M version "1\.9{100,}/);
  });
});
