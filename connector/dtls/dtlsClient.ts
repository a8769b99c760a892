/**
 * A DTLS 1.2 PSK client on its own UDP socket, over the same addon as DtlsServer (OpenSSL). For tests, benchmarks
 * and resumption from a new port; devices and the simulator use their own stacks.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { CipherSuite, Context, SavedSession, Session, SessionResult, cipherString, dtlsAddon } from './dtlsAddon';

export interface DtlsClientOptions {
  identity: string;
  key: Buffer;
  cipherSuites?: readonly CipherSuite[];
  mtu?: number;
}

/** A client context: identity, key and suites, shared by many connections. */
export class DtlsClientContext {
  readonly context: Context;
  constructor(options: DtlsClientOptions) {
    this.context = dtlsAddon.createClientContext(
      { ciphers: cipherString(options.cipherSuites ?? ['TLS_PSK_WITH_AES_128_CCM_8']), mtu: options.mtu ?? 1152 },
      options.identity,
      options.key,
    );
  }
}

export class DtlsClientConnection {
  private readonly socket: dgram.Socket;
  private session?: Session;
  private timer?: NodeJS.Timeout;
  private onMessage: (plaintext: Buffer) => void = () => {};
  /** The suite negotiated, once connected. */
  cipher?: string;
  resumed = false;

  private constructor(
    private readonly client: DtlsClientContext,
    private readonly address: string,
    private readonly port: number,
  ) {
    this.socket = dgram.createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  }

  /**
   * Handshakes with address:port; resolves once established, rejects with OpenSSL's reason when the handshake
   * fails, or after timeoutMs. resume offers a saved session (abbreviated handshake when the server still has it).
   */
  static async connect(
    client: DtlsClientContext,
    address: string,
    port: number,
    options: { resume?: SavedSession; timeoutMs?: number; onMessage?: (plaintext: Buffer) => void } = {},
  ): Promise<DtlsClientConnection> {
    const connection = new DtlsClientConnection(client, address, port);
    if (options.onMessage) connection.onMessage = options.onMessage;
    await new Promise<void>((resolve) => connection.socket.bind(0, resolve));
    try {
      await connection.handshake(options.resume, options.timeoutMs ?? 10_000);
    } catch (error) {
      connection.close();
      throw error;
    }
    return connection;
  }

  /** This connection's local UDP port. */
  get localPort(): number {
    return this.socket.address().port;
  }

  /** A copy of the session for resumption from another connection. */
  save(): SavedSession | undefined {
    return this.session && dtlsAddon.saveSession(this.session);
  }

  send(plaintext: Buffer): void {
    if (!this.session) throw new Error('DTLS client is closed');
    this.transmit(dtlsAddon.encrypt(this.session, plaintext));
  }

  /** Encrypts without sending: the records a man in the middle would see. */
  seal(plaintext: Buffer): Buffer[] {
    if (!this.session) throw new Error('DTLS client is closed');
    return dtlsAddon.encrypt(this.session, plaintext);
  }

  /** Sends raw datagrams from this connection's port (replays, forgeries). */
  sendRaw(datagrams: readonly Buffer[]): void {
    this.transmit(datagrams);
  }

  /** Ends the session (close_notify when notify) and closes the socket once the alert is sent. */
  close(notify = true): void {
    clearTimeout(this.timer);
    const alert = this.session ? dtlsAddon.close(this.session, notify, false) : [];
    this.session = undefined;
    if (alert.length === 0) this.socket.close();
    else this.socket.send(alert, this.port, this.address, () => this.socket.close());
  }

  private handshake(resume: SavedSession | undefined, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const session = dtlsAddon.connect(this.client.context, resume);
      this.session = session;
      const deadline = setTimeout(() => reject(new Error('DTLS handshake timed out')), timeoutMs);
      const apply = (result: SessionResult) => {
        this.transmit(result.toSend);
        for (const plaintext of result.plaintext) this.onMessage(plaintext);
        clearTimeout(this.timer);
        if (result.timeoutMs >= 0)
          this.timer = setTimeout(() => apply(dtlsAddon.handleTimeout(session)), result.timeoutMs + 1);
        if (result.handshakeDone) {
          clearTimeout(deadline);
          this.cipher = dtlsAddon.cipher(session);
          this.resumed = result.resumed;
          resolve();
        }
        if (result.closed) {
          clearTimeout(deadline);
          this.session = undefined;
          reject(new Error(`DTLS session closed: ${result.error ?? 'by the server'}`));
        }
      };
      this.socket.on('message', (datagram) => {
        if (this.session === session) apply(dtlsAddon.feed(session, datagram));
      });
      apply(dtlsAddon.feed(session, null));
    });
  }

  private transmit(datagrams: readonly Buffer[]): void {
    for (const datagram of datagrams) this.socket.send(datagram, this.port, this.address);
  }
}
