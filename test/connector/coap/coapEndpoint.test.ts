/**
 * The CoAP message layer against a raw UDP peer: retransmission, NSTART = 1, timeouts, resets, deduplication.
 */
import dgram, { Socket } from 'node:dgram';
import { AddressInfo } from 'node:net';
import {
  CoapCancelledError,
  CoapEndpoint,
  CoapResetError,
  CoapTimeoutError,
  Peer,
  observationHandle,
  observeOption,
} from '../../../connector/coap/coapEndpoint';
import {
  CoapMessage,
  Code,
  MessageType,
  OptionNumber,
  decodeMessage,
  encodeEmpty,
  encodeMessage,
  stringOption,
  uintOption,
} from '../../../connector/coap/coapMessage';
import { EXCHANGE_LIFETIME_MS } from '../../../connector/coap/coapParameters';
import { silentLogger } from '../../../connector/logger';

interface Arrival {
  message: CoapMessage;
  at: number;
}

class RawPeer {
  readonly arrivals: Arrival[] = [];
  onMessage?: (message: CoapMessage) => void;
  private constructor(readonly socket: Socket) {
    socket.on('message', (datagram) => {
      const message = decodeMessage(datagram);
      this.arrivals.push({ message, at: Date.now() });
      this.onMessage?.(message);
    });
  }
  static async start(): Promise<RawPeer> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new RawPeer(socket);
  }
  get peer(): Peer {
    return { address: '127.0.0.1', port: (this.socket.address() as AddressInfo).port };
  }
  send(datagram: Buffer, port: number): void {
    this.socket.send(datagram, port, '127.0.0.1');
  }
  answer(request: CoapMessage, port: number, code: number = Code.CONTENT, payload = 'ok'): void {
    this.send(
      encodeMessage({
        type: MessageType.ACK,
        code,
        messageId: request.messageId,
        token: request.token,
        options: [],
        payload: Buffer.from(payload),
      }),
      port,
    );
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

const get = (path: string) => ({ code: Code.GET, options: [stringOption(OptionNumber.URI_PATH, path)] });

describe('CoAP endpoint message layer', () => {
  let endpoint: CoapEndpoint;
  let peer: RawPeer;
  const handled: CoapMessage[] = [];

  beforeEach(async () => {
    handled.length = 0;
    endpoint = await CoapEndpoint.bind('127.0.0.1', 0, {
      log: silentLogger,
      now: Date.now,
      onRequest: async (request) => {
        handled.push(request);
        return { code: Code.CHANGED, payload: Buffer.from(`handled ${handled.length}`) };
      },
    });
    peer = await RawPeer.start();
  });
  afterEach(async () => {
    await endpoint.close();
    await peer.close();
  });

  it('keeps one request outstanding per peer (NSTART = 1) and sends the next when the first is answered', async () => {
    peer.onMessage = (message) => {
      if (message.code === Code.GET) setTimeout(() => peer.answer(message, endpoint.port), 100);
    };
    const responses = await Promise.all(
      ['a', 'b', 'c'].map((path) => endpoint.request(peer.peer, get(path), { timeoutMs: 2000 })),
    );
    expect(responses.every((r) => r.code === Code.CONTENT)).toBe(true);
    const arrivals = peer.arrivals.map((a) => a.at);
    expect(peer.arrivals.map((a) => a.message.options[0].value.toString())).toEqual(['a', 'b', 'c']);
    expect(arrivals[1] - arrivals[0]).toBeGreaterThanOrEqual(90);
    expect(arrivals[2] - arrivals[1]).toBeGreaterThanOrEqual(90);
  });

  it('retransmits an unacknowledged request with the same message ID after ACK_TIMEOUT (2-3 s)', async () => {
    peer.onMessage = (message) => {
      if (peer.arrivals.length === 2) peer.answer(message, endpoint.port);
    };
    const response = await endpoint.request(peer.peer, get('x'), { timeoutMs: 10_000 });
    expect(response.code).toBe(Code.CONTENT);
    const [first, second] = peer.arrivals;
    expect(second.message.messageId).toBe(first.message.messageId);
    expect(second.at - first.at).toBeGreaterThanOrEqual(1950);
    expect(second.at - first.at).toBeLessThan(4000);
    expect(endpoint.stats.retransmissions).toBe(1);
  });

  it('takes an empty ACK then a separate response, and acknowledges the response', async () => {
    peer.onMessage = (message) => {
      if (message.code !== Code.GET) return;
      peer.send(encodeEmpty(MessageType.ACK, message.messageId), endpoint.port);
      setTimeout(() => {
        peer.send(
          encodeMessage({
            type: MessageType.CON,
            code: Code.CONTENT,
            messageId: 777,
            token: message.token,
            options: [],
            payload: Buffer.from('late'),
          }),
          endpoint.port,
        );
      }, 50);
    };
    const response = await endpoint.request(peer.peer, get('slow'), { timeoutMs: 2000 });
    expect(response.payload.toString()).toBe('late');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const ack = peer.arrivals.find((a) => a.message.type === MessageType.ACK);
    expect(ack?.message.messageId).toBe(777);
  });

  it('fails with a timeout at the deadline, with a reset on RST, and frees the slot either way', async () => {
    const silent = endpoint.request(peer.peer, get('never'), { timeoutMs: 300 });
    await expect(silent).rejects.toBeInstanceOf(CoapTimeoutError);
    peer.onMessage = (message) => peer.send(encodeEmpty(MessageType.RST, message.messageId), endpoint.port);
    await expect(endpoint.request(peer.peer, get('reset'), { timeoutMs: 1000 })).rejects.toBeInstanceOf(CoapResetError);
    peer.onMessage = (message) => peer.answer(message, endpoint.port);
    expect((await endpoint.request(peer.peer, get('fine'), { timeoutMs: 1000 })).code).toBe(Code.CONTENT);
  });

  it('cancels queued and outstanding requests when the peer is forgotten', async () => {
    const first = endpoint.request(peer.peer, get('one'), { timeoutMs: 5000 });
    const second = endpoint.request(peer.peer, get('two'), { timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    endpoint.forgetPeer(peer.peer, 'gone');
    await expect(first).rejects.toBeInstanceOf(CoapCancelledError);
    await expect(second).rejects.toBeInstanceOf(CoapCancelledError);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(peer.arrivals.map((a) => a.message.options[0].value.toString())).toEqual(['one']);
  });

  it('handles a retransmitted request once and repeats its response; answers 4.02 to an unknown critical option', async () => {
    const request = encodeMessage({
      type: MessageType.CON,
      code: Code.POST,
      messageId: 4242,
      token: Buffer.from([9]),
      options: [stringOption(OptionNumber.URI_PATH, 'rd')],
      payload: Buffer.alloc(0),
    });
    peer.send(request, endpoint.port);
    peer.send(request, endpoint.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const acks = peer.arrivals.filter((a) => a.message.messageId === 4242);
    expect(acks).toHaveLength(2);
    expect(acks[1].message).toEqual(acks[0].message);
    expect(handled).toHaveLength(1);

    peer.send(
      encodeMessage({
        type: MessageType.CON,
        code: Code.POST,
        messageId: 4243,
        token: Buffer.alloc(0),
        options: [{ number: 2051, value: Buffer.from([1]) }],
        payload: Buffer.alloc(0),
      }),
      endpoint.port,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(peer.arrivals.find((a) => a.message.messageId === 4243)?.message.code).toBe(Code.BAD_OPTION);
    expect(handled).toHaveLength(1);
  });

  it('forgets a remembered request once its lifetime is over, without waiting for another request', async () => {
    // Fake timers for the endpoint's periodic sweep; its clock is `now`; I/O still needs setImmediate to turn.
    jest.useFakeTimers({ doNotFake: ['Date', 'nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] });
    let now = Date.now();
    const clocked = await CoapEndpoint.bind('127.0.0.1', 0, {
      log: silentLogger,
      now: () => now,
      onRequest: async () => ({ code: Code.CHANGED }),
    });
    try {
      const request = { type: MessageType.CON, code: Code.POST, messageId: 4244, token: Buffer.from([7]) };
      peer.send(encodeMessage({ ...request, options: [], payload: Buffer.alloc(0) }), clocked.port);
      const deadline = Date.now() + 2000;
      while (peer.arrivals.length === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      expect(peer.arrivals.map((a) => a.message.messageId)).toEqual([4244]);
      const remembered = (clocked as unknown as { rememberedRequests: Map<string, unknown> }).rememberedRequests;
      expect(remembered.size).toBe(1);
      jest.advanceTimersByTime(EXCHANGE_LIFETIME_MS / 2);
      expect(remembered.size).toBe(1);
      now += EXCHANGE_LIFETIME_MS;
      jest.advanceTimersByTime(EXCHANGE_LIFETIME_MS / 2);
      expect(remembered.size).toBe(0);
      expect(jest.getTimerCount()).toBe(0); // the sweep stops with nothing left to forget
    } finally {
      await clocked.close();
      jest.useRealTimers();
    }
  });

  it("delivers notifications with their observation's subject, a retransmitted one once, and resets them once cancelled", async () => {
    peer.onMessage = (message) => {
      if (message.code !== Code.GET) return;
      peer.send(
        encodeMessage({
          type: MessageType.ACK,
          code: Code.CONTENT,
          messageId: message.messageId,
          token: message.token,
          options: [uintOption(OptionNumber.OBSERVE, 1)],
          payload: Buffer.from('1'),
        }),
        endpoint.port,
      );
    };
    const delivered: [unknown, string, boolean][] = [];
    const listener = {
      onNotification: (subject: unknown, notification: CoapMessage, final: boolean) =>
        void delivered.push([subject, notification.payload.toString(), final]),
    };
    const observe = { code: Code.GET, options: [observeOption(true), stringOption(OptionNumber.URI_PATH, 'x')] };
    const response = await endpoint.request(peer.peer, observe, {
      timeoutMs: 2000,
      onNotification: listener,
      subject: 'x',
    });
    expect(endpoint.observationCount).toBe(1);
    const notification = (messageId: number, sequence: number) =>
      encodeMessage({
        type: MessageType.CON,
        code: Code.CONTENT,
        messageId,
        token: response.token,
        options: [uintOption(OptionNumber.OBSERVE, sequence)],
        payload: Buffer.from(String(sequence)),
      });
    // Message ID 0 is no duplicate of anything before it; its retransmission is.
    peer.send(notification(0, 2), endpoint.port);
    peer.send(notification(0, 2), endpoint.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toEqual([['x', '2', false]]);
    expect(endpoint.stats.duplicateResponses).toBe(1);
    expect(endpoint.stats.staleNotifications).toBe(0);
    const acks = peer.arrivals.filter((a) => a.message.type === MessageType.ACK && a.message.code === Code.EMPTY);
    expect(acks.map((a) => a.message.messageId)).toEqual([0, 0]);

    endpoint.cancelObservation(peer.peer, observationHandle(response));
    expect(endpoint.observationCount).toBe(0);
    peer.send(notification(1, 3), endpoint.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(delivered).toHaveLength(1);
    expect(peer.arrivals.filter((a) => a.message.type === MessageType.RST).map((a) => a.message.messageId)).toEqual([
      1,
    ]);
  });

  it('answers a CoAP ping and a malformed confirmable message with RST', async () => {
    peer.send(Buffer.from([0x40, 0x00, 0x01, 0x02]), endpoint.port);
    peer.send(Buffer.from([0x40, 0x01, 0x01, 0x03, 0xf0]), endpoint.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const resets = peer.arrivals.filter((a) => a.message.type === MessageType.RST).map((a) => a.message.messageId);
    expect(resets).toEqual([0x0102, 0x0103]);
    expect(endpoint.stats.malformed).toBe(1);
  });

  it('answers a Confirmable request with an option number past 65535 with RST (a message format error)', async () => {
    // Uri-Path (11), then delta 14 with extension 0xfef6: 11 + 269 + 65270 = option 65550.
    peer.send(Buffer.from('40 02 05 06 b2 7264 e0 fef6'.replace(/ /g, ''), 'hex'), endpoint.port);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(peer.arrivals.map((a) => [a.message.type, a.message.messageId])).toEqual([[MessageType.RST, 0x0506]]);
    expect(endpoint.stats.malformed).toBe(1);
    expect(handled).toHaveLength(0);
  });
});

describe('CoAP endpoint responses within MAX_MESSAGE_SIZE (1152 bytes)', () => {
  let endpoint: CoapEndpoint;
  let peer: RawPeer;
  const datagrams: Buffer[] = [];

  beforeEach(async () => {
    datagrams.length = 0;
    endpoint = await CoapEndpoint.bind('127.0.0.1', 0, {
      log: silentLogger,
      now: Date.now,
      // Echoes the request in its answer, as a server's diagnostics do ("no resource /...").
      onRequest: async (request) => {
        const path = request.options.filter((o) => o.number === OptionNumber.URI_PATH).map((o) => o.value);
        const echo = Buffer.concat([Buffer.from('no resource /'), ...path]);
        const [kind] = path.map(String);
        if (kind === 'content') return { code: Code.CONTENT, payload: echo };
        if (kind === 'formatted') {
          return { code: Code.NOT_FOUND, options: [uintOption(OptionNumber.CONTENT_FORMAT, 0)], payload: echo };
        }
        return { code: Code.NOT_FOUND, payload: echo };
      },
    });
    peer = await RawPeer.start();
    peer.socket.on('message', (datagram) => datagrams.push(datagram));
  });
  afterEach(async () => {
    await endpoint.close();
    await peer.close();
  });

  const ask = async (segments: string[]): Promise<CoapMessage> => {
    const messageId = 100 + datagrams.length;
    peer.send(
      encodeMessage({
        type: MessageType.CON,
        code: Code.GET,
        messageId,
        token: Buffer.from([1, 2]),
        options: segments.map((s) => stringOption(OptionNumber.URI_PATH, s)),
        payload: Buffer.alloc(0),
      }),
      endpoint.port,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const arrival = peer.arrivals.find((a) => a.message.messageId === messageId);
    if (!arrival) throw new Error(`no response to ${messageId}`);
    return arrival.message;
  };

  it('keeps a client error whose echoed diagnostic is too long, cutting the diagnostic to fit', async () => {
    const response = await ask(Array.from({ length: 600 }, () => 'é'));
    expect(response.code).toBe(Code.NOT_FOUND);
    expect(datagrams.at(-1)?.length).toBeLessThanOrEqual(1152);
    expect(datagrams.at(-1)?.length).toBeGreaterThan(1140);
    const diagnostic = new TextDecoder('utf-8', { fatal: true }).decode(response.payload);
    expect(diagnostic).toMatch(/^no resource \/(é)+$/);
  });

  it('still answers 5.00 with no payload when a success or a formatted payload is too big', async () => {
    const long = Array.from({ length: 600 }, () => 'xx');
    for (const first of ['content', 'formatted']) {
      const response = await ask([first, ...long]);
      expect(response.code).toBe(Code.INTERNAL_SERVER_ERROR);
      expect(response.options).toEqual([]);
      expect(response.payload.length).toBe(0);
    }
  });
});
