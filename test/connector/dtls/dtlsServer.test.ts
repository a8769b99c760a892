/**
 * DtlsServer (connector/dtls) against a client it did not write: libcoap's coap-client (Debian libcoap3-bin) built on
 * GnuTLS, another DTLS stack, and on OpenSSL, fetching from a tiny CoAP echo over coaps://. The addon's own client mode
 * (DtlsClientConnection) is used where a test needs raw records: replays, a second port, a saved session.
 * The test fails, not skips, when coap-client is missing (scripts/ensure-coap-client.sh installs it).
 */
import { generate, parse } from 'coap-packet';
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { dtlsAddon } from '../../../connector/dtls/dtlsAddon';
import { DtlsClientConnection, DtlsClientContext } from '../../../connector/dtls/dtlsClient';
import { DtlsPeer, DtlsServer, DtlsServerOptions, SessionEndReason } from '../../../connector/dtls/dtlsServer';

// ASCII keys: coap-client -k takes the key as text.
const KEY = Buffer.from('sim-001-psk-0001');
const OTHER_KEY = Buffer.from('sim-002-psk-0002');

interface Received {
  peer: DtlsPeer;
  text: string;
  identity: string;
}

/**
 * An echo server: a datagram that parses as a CoAP request is answered `2.05 echo:<path>`, any other record comes
 * back as `echo:<text>`, over the same session.
 */
async function startEchoServer(options: Partial<DtlsServerOptions> = {}) {
  const received: Received[] = [];
  const ended: { identity?: string; reason: SessionEndReason }[] = [];
  const started: { identity: string; resumed: boolean; cipher: string }[] = [];
  const server = new DtlsServer({
    onDatagram: (peer, plaintext, identity) => {
      const request = parseCoapRequest(plaintext);
      received.push({ peer, text: request ? `GET /${request.path}` : plaintext.toString(), identity });
      const reply = request
        ? generate({
            messageId: request.messageId,
            token: request.token,
            ack: true,
            code: '2.05',
            payload: Buffer.from(`echo:${request.path}`),
          })
        : Buffer.from(`echo:${plaintext}`);
      server.send(peer, reply);
    },
    onSessionStart: (_peer, identity, info) => started.push({ identity, ...info }),
    onSessionEnd: (_peer, identity, reason) => ended.push({ identity, reason }),
    handshakeTimeoutMs: 2500,
    ...options,
  });
  server.setKey('sim-001', KEY);
  server.setKey('sim-002', OTHER_KEY);
  const { port } = await server.bind('127.0.0.1', 0);
  return { server, port, received, ended, started };
}

function parseCoapRequest(datagram: Buffer): { messageId: number; token: Buffer; path: string } | undefined {
  try {
    const packet = parse(datagram);
    if (packet.code !== '0.01' || !packet.confirmable) return undefined;
    const path = packet.options.filter((o) => o.name === 'Uri-Path').map((o) => o.value.toString());
    return { messageId: packet.messageId, token: packet.token, path: path.join('/') };
  } catch {
    return undefined;
  }
}

type EchoServer = Awaited<ReturnType<typeof startEchoServer>>;

/** Debian installs coap-client once per TLS flavour; GnuTLS is the stack furthest from ours. */
const COAP_CLIENTS = ['coap-client-gnutls', 'coap-client-openssl'];

/** `coap-client -u identity -k key coaps://127.0.0.1:port/path`: its output (the payload, or its error log). */
async function coapGet(client: string, port: number, identity: string, key: Buffer, path: string) {
  const args = ['-B', '3', '-u', identity, '-k', key.toString(), `coaps://127.0.0.1:${port}/${path}`];
  try {
    const { stdout } = await promisify(execFile)(client, args, { timeout: 10_000 });
    return stdout.trim();
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  }
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('DtlsServer', () => {
  let echo: EchoServer;
  beforeEach(async () => {
    echo = await startEchoServer();
  });
  afterEach(() => echo.server.close());

  describe.each(COAP_CLIENTS)('with libcoap %s', (client) => {
    it.each([
      ['TLS_PSK_WITH_AES_128_CCM_8', 'PSK-AES128-CCM8'],
      ['TLS_PSK_WITH_AES_128_CBC_SHA256', 'PSK-AES128-CBC-SHA256'],
    ] as const)('completes a PSK handshake over %s and answers a CoAP GET', async (suite, openssl) => {
      const only = await startEchoServer({ cipherSuites: [suite] });
      try {
        expect(await coapGet(client, only.port, 'sim-001', KEY, 'rd/ping')).toBe('echo:rd/ping');
        expect(only.received).toEqual([expect.objectContaining({ text: 'GET /rd/ping', identity: 'sim-001' })]);
        expect(only.started).toEqual([{ identity: 'sim-001', resumed: false, cipher: openssl }]);
        expect(only.server.stats()).toMatchObject({ fullHandshakes: 1, failedHandshakes: 0 });
      } finally {
        await only.server.close();
      }
    });

    it('refuses the wrong key and an unknown identity: no request is delivered', async () => {
      expect(await coapGet(client, echo.port, 'sim-001', OTHER_KEY, 'rd/ping')).not.toContain('echo:');
      expect(await coapGet(client, echo.port, 'sim-999', KEY, 'rd/ping')).not.toContain('echo:');
      await waitFor(() => echo.server.stats().handshaking === 0);
      expect(echo.server.stats()).toMatchObject({ established: 0, fullHandshakes: 0, failedHandshakes: 2 });
      expect(echo.received).toEqual([]);
    });
  });

  it('answers a ClientHello without cookie with a smaller HelloVerifyRequest and keeps no state for it', async () => {
    // A real ClientHello (from the addon's client mode) sent from a socket that never continues: a spoofer's view.
    const hello = dtlsAddon.feed(
      dtlsAddon.connect(new DtlsClientContext({ identity: 'sim-001', key: KEY }).context),
      null,
    ).toSend[0];
    const spoofer = dgram.createSocket('udp4');
    try {
      spoofer.bind(0);
      await once(spoofer, 'listening');
      const replies: Buffer[] = [];
      spoofer.on('message', (reply) => replies.push(reply));
      for (let i = 0; i < 200; i++) spoofer.send(hello, echo.port, '127.0.0.1');
      await waitFor(() => replies.length === 200);
      // record type 22 (handshake), handshake type 3 (hello_verify_request)
      expect(replies.every((reply) => reply[0] === 22 && reply[13] === 3)).toBe(true);
      expect(Math.max(...replies.map((reply) => reply.length))).toBeLessThan(hello.length);
      expect(echo.server.stats()).toMatchObject({ established: 0, handshaking: 0, helloVerifyRequests: 200 });
    } finally {
      spoofer.close();
    }
  });

  it('drops a replayed record: the plaintext is delivered once', async () => {
    const client = await DtlsClientConnection.connect(
      new DtlsClientContext({ identity: 'sim-001', key: KEY }),
      '127.0.0.1',
      echo.port,
    );
    try {
      const records = client.seal(Buffer.from('set-point 21'));
      client.sendRaw(records);
      client.sendRaw(records);
      client.sendRaw(records);
      client.send(Buffer.from('after'));
      await waitFor(() => echo.received.some((r) => r.text === 'after'));
      expect(echo.received.map((r) => r.text)).toEqual(['set-point 21', 'after']);
      expect(echo.server.stats().datagramsDropped).toBe(2);
    } finally {
      client.close();
    }
  });

  it('ignores garbage and truncated records on a live session', async () => {
    const client = await DtlsClientConnection.connect(
      new DtlsClientContext({ identity: 'sim-001', key: KEY, cipherSuites: ['TLS_PSK_WITH_AES_128_CBC_SHA256'] }),
      '127.0.0.1',
      echo.port,
    );
    try {
      const [record] = client.seal(Buffer.from('x'));
      const flipped = Buffer.from(record);
      flipped[flipped.length - 1] ^= 1;
      client.sendRaw([Buffer.alloc(0), Buffer.from([23]), record.subarray(0, 20), flipped, Buffer.alloc(3000, 0x17)]);
      client.send(Buffer.from('still here'));
      await waitFor(() => echo.received.length === 1);
      expect(echo.received[0].text).toBe('still here');
      expect(echo.server.stats().established).toBe(1);
    } finally {
      client.close();
    }
  });

  it('resumes a session from a new source port without a PSK handshake (NAT rebinding)', async () => {
    const context = new DtlsClientContext({ identity: 'sim-001', key: KEY });
    const first = await DtlsClientConnection.connect(context, '127.0.0.1', echo.port);
    const saved = first.save();
    const second = await DtlsClientConnection.connect(context, '127.0.0.1', echo.port, { resume: saved });
    try {
      expect(second.localPort).not.toBe(first.localPort);
      expect(second.resumed).toBe(true);
      second.send(Buffer.from('from the new port'));
      await waitFor(() => echo.received.length === 1);
      expect(echo.received[0]).toMatchObject({ identity: 'sim-001', peer: { port: second.localPort } });
      expect(echo.server.stats()).toMatchObject({ fullHandshakes: 1, resumedHandshakes: 1 });
    } finally {
      first.close(false);
      second.close();
    }
  });

  it('refuses to resume a session made before its key changed', async () => {
    // The server's clock runs 2 s ahead, so the key change below is later than the session's creation second.
    const ahead = await startEchoServer({ now: () => Date.now() + 2000 });
    try {
      const context = new DtlsClientContext({ identity: 'sim-001', key: KEY });
      const first = await DtlsClientConnection.connect(context, '127.0.0.1', ahead.port);
      const saved = first.save();
      first.close(true);
      await waitFor(() => ahead.ended.some((e) => e.reason === 'closedByPeer'));
      ahead.server.setKey('sim-001', OTHER_KEY);
      // An abbreviated handshake ends on the client first; the server then refuses it and forgets the session.
      const second = await DtlsClientConnection.connect(context, '127.0.0.1', ahead.port, { resume: saved });
      second.send(Buffer.from('with the old key'));
      await waitFor(() => ahead.ended.some((e) => e.reason === 'staleResumption'));
      second.close();
      expect(ahead.received).toEqual([]);
      expect(ahead.server.stats()).toMatchObject({ established: 0, resumedHandshakes: 0, cachedSessions: 0 });
    } finally {
      await ahead.server.close();
    }
  });

  it('a key change ends the live session, and the old key no longer connects', async () => {
    const context = new DtlsClientContext({ identity: 'sim-001', key: KEY });
    const connection = await DtlsClientConnection.connect(context, '127.0.0.1', echo.port);
    const saved = connection.save();
    echo.server.setKey('sim-001', OTHER_KEY);
    expect(echo.ended).toEqual([{ identity: 'sim-001', reason: 'ended' }]);
    connection.close(false);
    await expect(
      DtlsClientConnection.connect(context, '127.0.0.1', echo.port, { resume: saved, timeoutMs: 1500 }),
    ).rejects.toThrow();
    expect(echo.server.stats()).toMatchObject({ established: 0, resumedHandshakes: 0 });
  });

  it('ends the live sessions of an identity whose key is deleted', async () => {
    const client = await DtlsClientConnection.connect(
      new DtlsClientContext({ identity: 'sim-001', key: KEY }),
      '127.0.0.1',
      echo.port,
    );
    try {
      expect(echo.server.stats().established).toBe(1);
      echo.server.deleteKey('sim-001');
      expect(echo.server.stats().established).toBe(0);
      expect(echo.ended).toEqual([{ identity: 'sim-001', reason: 'ended' }]);
    } finally {
      client.close();
    }
  });

  /** A UDP proxy in front of the echo server that passes the client's datagrams and the server's that `pass` lets. */
  async function lossyProxy(pass: (fromServer: Buffer) => boolean) {
    const proxy = dgram.createSocket('udp4');
    proxy.bind(0, '127.0.0.1');
    await once(proxy, 'listening');
    let clientPort = 0;
    const towardServer = dgram.createSocket('udp4');
    towardServer.bind(0, '127.0.0.1');
    await once(towardServer, 'listening');
    proxy.on('message', (datagram, rinfo) => {
      clientPort = rinfo.port;
      towardServer.send(datagram, echo.port, '127.0.0.1');
    });
    towardServer.on('message', (datagram) => {
      if (pass(datagram)) proxy.send(datagram, clientPort, '127.0.0.1');
    });
    return {
      port: proxy.address().port,
      close: () => {
        proxy.close();
        towardServer.close();
      },
    };
  }

  it('retransmits its flight when the first one is lost', async () => {
    // Drops the server's first datagram after the HelloVerifyRequest (the ServerHello flight).
    let fromServer = 0;
    const proxy = await lossyProxy(() => ++fromServer !== 2);
    try {
      const client = await DtlsClientConnection.connect(
        new DtlsClientContext({ identity: 'sim-001', key: KEY }),
        '127.0.0.1',
        proxy.port,
      );
      client.close();
      expect(fromServer).toBeGreaterThanOrEqual(4);
    } finally {
      proxy.close();
    }
  });

  it('sends its final flight again when it is lost, after the handshake buffer was released', async () => {
    // The server finishes its handshake (and hands its handshake buffer's pages back) on the client's Finished; its
    // own ChangeCipherSpec and Finished are dropped once, so the client retransmits its flight and the server must
    // rebuild its last flight in that buffer.
    const dropped = { changeCipherSpec: 0, finished: 0 };
    const proxy = await lossyProxy((datagram) => {
      const [contentType, , , epochHigh, epochLow] = datagram;
      if (contentType === 20 && dropped.changeCipherSpec++ === 0) return false;
      if (contentType === 22 && (epochHigh << 8) + epochLow === 1 && dropped.finished++ === 0) return false;
      return true;
    });
    try {
      const replies: string[] = [];
      const client = await DtlsClientConnection.connect(
        new DtlsClientContext({ identity: 'sim-001', key: KEY }),
        '127.0.0.1',
        proxy.port,
        { onMessage: (plaintext) => replies.push(plaintext.toString()) },
      );
      client.send(Buffer.from('after the lost flight'));
      await waitFor(() => replies.length > 0);
      expect(replies).toEqual(['echo:after the lost flight']);
      client.close();
      // Both were dropped once and then got through: what the client holds came from the server's second flight.
      expect(dropped.changeCipherSpec).toBeGreaterThanOrEqual(2);
      expect(dropped.finished).toBeGreaterThanOrEqual(2);
      expect(echo.server.stats()).toMatchObject({ fullHandshakes: 1, failedHandshakes: 0 });
    } finally {
      proxy.close();
    }
  });
});
