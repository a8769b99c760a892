import {
  CoapFormatError,
  Code,
  MessageType,
  OptionNumber,
  decodeMessage,
  encodeMessage,
  encodeWithin,
  formatCode,
  readStringOptions,
  readUintOption,
  stringOption,
  uintOption,
} from '../../../connector/coap/coapMessage';

describe('CoAP message codec (RFC 7252 §3)', () => {
  it('decodes the RFC 7252 Figure 16 GET with a token and options, byte for byte', () => {
    // CON GET, MID 0x7d34, token 0x20, Uri-Path "temperature"; then the piggybacked 2.05 "22.3 C".
    const request = Buffer.from('4101 7d34 20 bb 74656d7065726174757265'.replace(/ /g, ''), 'hex');
    const decoded = decodeMessage(request);
    expect(decoded).toMatchObject({ type: MessageType.CON, code: Code.GET, messageId: 0x7d34 });
    expect(decoded.token).toEqual(Buffer.from([0x20]));
    expect(readStringOptions(decoded, OptionNumber.URI_PATH)).toEqual(['temperature']);
    expect(encodeMessage(decoded)).toEqual(request);
    const response = Buffer.from('6145 7d34 20 ff 32322e332043'.replace(/ /g, ''), 'hex');
    const answer = decodeMessage(response);
    expect(answer).toMatchObject({ type: MessageType.ACK, code: Code.CONTENT });
    expect(answer.payload.toString()).toBe('22.3 C');
    expect(formatCode(answer.code)).toBe('2.05');
  });

  it('round-trips extended option deltas and lengths (13 and 14 nibbles)', () => {
    const long = Buffer.alloc(300, 0x61);
    const message = {
      type: MessageType.NON,
      code: Code.POST,
      messageId: 65535,
      token: Buffer.from('0102030405060708', 'hex'),
      options: [
        uintOption(OptionNumber.OBSERVE, 0x123456),
        stringOption(OptionNumber.URI_PATH, 'rd'),
        { number: OptionNumber.PROXY_URI, value: long },
        { number: 2049, value: Buffer.from([1]) },
      ],
      payload: Buffer.from('hello'),
    };
    const decoded = decodeMessage(encodeMessage(message));
    expect(decoded.options.map((o) => o.number)).toEqual([6, 11, 35, 2049]);
    expect(decoded.options[2].value).toEqual(long);
    expect(readUintOption(decoded, OptionNumber.OBSERVE)).toBe(0x123456);
    expect(decoded.payload.toString()).toBe('hello');
    expect(uintOption(OptionNumber.OBSERVE, 0).value.length).toBe(0);
  });

  it.each([
    ['shorter than the header', '40 01 00'],
    ['unsupported CoAP version', '80 01 00 01'],
    ['reserved token length', '49 01 00 01 0102030405060708 09'],
    ['must be the 4-byte header alone', '60 00 00 01 ff'],
    ['token runs past the end', '44 01 00 01 0102'],
    ['reserved option nibble 15', '40 01 00 01 f0'],
    ['runs past the end of the datagram', '40 01 00 01 b5 7264'],
    ['option header runs past the end', '40 01 00 01 d1'],
    ['payload marker followed by no payload', '40 01 00 01 ff'],
    // Delta 14 with extension 0xfef3: 269 + 65267 = option number 65536.
    ['option number 65536 is past 65535', '40 01 00 01 e0 fef3'],
    // Option 65535 (allowed), then a delta of 1 carries the sum past the 16-bit range.
    ['number 65536 is past', '40 01 00 01 e0 fef2 10'],
  ])('rejects a datagram whose %s', (reason, hex) => {
    const bytes = Buffer.from(hex.replace(/ /g, ''), 'hex');
    expect(() => decodeMessage(bytes)).toThrow(CoapFormatError);
    expect(() => decodeMessage(bytes)).toThrow(reason);
  });

  it('reports the header of a malformed Confirmable message so it can be reset', () => {
    try {
      decodeMessage(Buffer.from('400112340f', 'hex'));
      throw new Error('no error');
    } catch (error) {
      expect((error as CoapFormatError).header).toEqual({ type: MessageType.CON, messageId: 0x1234 });
    }
  });

  it('accepts option number 65535 and refuses to encode 65536', () => {
    const decoded = decodeMessage(Buffer.from('40 01 00 01 e0 fef2'.replace(/ /g, ''), 'hex'));
    expect(decoded.options.map((o) => o.number)).toEqual([65535]);
    const message = { ...decoded, options: [{ number: 65536, value: Buffer.alloc(0) }] };
    expect(() => encodeMessage(message)).toThrow(RangeError);
  });
});

describe('responses within a message size (RFC 7252 §4.6, §5.5.2)', () => {
  const response = (code: number, payload: string, options = [stringOption(OptionNumber.LOCATION_PATH, 'rd')]) => ({
    type: MessageType.ACK,
    code,
    messageId: 7,
    token: Buffer.from([1, 2, 3, 4]),
    options,
    payload: Buffer.from(payload),
  });

  it('encodes a response that fits as it is', () => {
    const message = response(Code.NOT_FOUND, 'no resource /x');
    expect(encodeWithin(message, 1152)).toEqual(encodeMessage(message));
  });

  it('cuts an error diagnostic to fit, at a UTF-8 character boundary, keeping the code', () => {
    // 'é' is 2 bytes and '€' is 3: a cut at any byte count must never split one.
    const text = 'é€'.repeat(400);
    for (const maxSize of [100, 101, 102, 103, 104, 1152]) {
      const encoded = encodeWithin(response(Code.BAD_REQUEST, text), maxSize) as Buffer;
      expect(encoded.length).toBeLessThanOrEqual(maxSize);
      expect(encoded.length).toBeGreaterThan(maxSize - 3);
      const decoded = decodeMessage(encoded);
      expect(decoded.code).toBe(Code.BAD_REQUEST);
      expect(readStringOptions(decoded, OptionNumber.LOCATION_PATH)).toEqual(['rd']);
      const diagnostic = new TextDecoder('utf-8', { fatal: true }).decode(decoded.payload);
      expect(text.startsWith(diagnostic)).toBe(true);
    }
  });

  it('does not cut a success payload, a payload with a Content-Format, or options that alone are too big', () => {
    expect(encodeWithin(response(Code.CONTENT, 'x'.repeat(2000)), 1152)).toBeUndefined();
    const formatted = response(Code.BAD_REQUEST, 'x'.repeat(2000), [uintOption(OptionNumber.CONTENT_FORMAT, 0)]);
    expect(encodeWithin(formatted, 1152)).toBeUndefined();
    const longPath = response(Code.NOT_FOUND, 'no resource', [
      stringOption(OptionNumber.LOCATION_PATH, 'p'.repeat(1200)),
    ]);
    expect(encodeWithin(longPath, 1152)).toBeUndefined();
  });
});
