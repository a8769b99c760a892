/**
 * CoAP over DTLS 1.2 with a pre-shared key (coaps://, RFC 7252 §9; LwM2M 1.1 Transport §5.2.8): one UDP socket per
 * device and one session with the server on it, through the connector's DTLS addon in client mode (Node's bundled
 * OpenSSL; connector/dtls). Every cryptographic and protocol step is OpenSSL's; this class drives the session's
 * state machine and its handshake retransmission timer.
 *
 * Contracts:
 * - Only the server's address and port are listened to; anything else is dropped.
 * - A CoAP message is sent only on an established session (`send` is false otherwise); one message, one record.
 * - `connect` handshakes (TLS_PSK_WITH_AES_128_CCM_8, the LwM2M mandatory suite) within `handshakeTimeoutMs`, real
 *   time (OpenSSL keeps its own clock for retransmissions). A refused identity fails at once with the server's alert;
 *   a wrong key fails by timeout, as DTLS drops a Finished record it cannot decrypt.
 * - A session the server ends (close_notify on key rotation or deprovisioning, a fatal alert) is reported through
 *   `onSessionEnd`; nothing more is sent until the next `connect`.
 * - The key is never logged.
 */
import dgram from 'dgram';
import { DtlsClientContext } from '../connector/dtls/dtlsClient';
import { dtlsAddon, Session, SessionResult } from '../connector/dtls/dtlsAddon';
import { bindSocket, DeviceTransport, DeviceTransportOptions, PskCredentials, RemoteAddress } from './deviceTransport';

/** How long a handshake may take before `connect` gives up, ms (OpenSSL retransmits flights at 1, 2, 4 s...). */
export const DTLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface DtlsDeviceTransportOptions extends DeviceTransportOptions {
  readonly security: PskCredentials;
  /** Default DTLS_HANDSHAKE_TIMEOUT_MS. */
  readonly handshakeTimeoutMs?: number;
}

interface Handshake {
  session: Session;
  done: Promise<void>;
  settle(error?: Error): void;
}

export class DtlsDeviceTransport implements DeviceTransport {
  unreachable = false;
  private session?: Session;
  private established = false;
  private handshake?: Handshake;
  private retransmitTimer?: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly context: DtlsClientContext,
    private readonly options: DtlsDeviceTransportOptions,
  ) {
    const server = options.server;
    socket.on('message', (datagram, rinfo) => {
      if (rinfo.port !== server.port || rinfo.address !== server.address) return;
      if (this.unreachable && !this.established) return;
      if (this.session) this.apply(this.session, dtlsAddon.feed(this.session, datagram));
    });
    socket.on('error', (error) => options.log(`socket error on port ${this.portOrZero()}: ${error.message}`));
  }

  static async open(options: DtlsDeviceTransportOptions): Promise<DtlsDeviceTransport> {
    const context = new DtlsClientContext({ identity: options.security.identity, key: options.security.key });
    return new DtlsDeviceTransport(await bindSocket(options), context, options);
  }

  get port(): number {
    return this.socket.address().port;
  }

  connect(options: { fresh?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.reject(new Error('DTLS transport closed'));
    if (!options.fresh && this.established) return Promise.resolve();
    if (!options.fresh && this.handshake) return this.handshake.done;
    this.endSession(new Error('a new handshake replaced this one'));
    return this.startHandshake();
  }

  send(message: Buffer, remote: RemoteAddress): boolean {
    if (!this.session || !this.established || this.closed) return false;
    if (remote.port !== this.options.server.port || remote.address !== this.options.server.address) return false;
    this.transmit(dtlsAddon.encrypt(this.session, message));
    return true;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.endSession(new Error('DTLS transport closed'));
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private startHandshake(): Promise<void> {
    const session = dtlsAddon.connect(this.context.context);
    const timeoutMs = this.options.handshakeTimeoutMs ?? DTLS_HANDSHAKE_TIMEOUT_MS;
    let settle!: (error?: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => {
        settle(new Error(`DTLS handshake: not done within ${timeoutMs} ms`));
        if (this.session === session) this.endSession();
      }, timeoutMs);
      deadline.unref();
      settle = (error) => {
        clearTimeout(deadline);
        if (this.handshake?.session === session) this.handshake = undefined;
        if (error) reject(error);
        else resolve();
      };
    });
    this.session = session;
    this.established = false;
    this.handshake = { session, done, settle };
    this.apply(session, dtlsAddon.feed(session, null));
    return done;
  }

  /** Acts on one session call's result: send, deliver, restart the retransmission timer, settle the handshake. */
  private apply(session: Session, result: SessionResult): void {
    if (this.session !== session) return;
    this.transmit(result.toSend);
    if (result.handshakeDone) {
      this.established = true;
      this.handshake?.settle();
    }
    for (const plaintext of result.plaintext) this.options.receive(plaintext, this.options.server);
    if (result.closed) {
      const wasEstablished = this.established;
      this.session = undefined;
      this.established = false;
      clearTimeout(this.retransmitTimer);
      const reason = result.error ?? 'closed by the server';
      if (this.handshake?.session === session) this.handshake.settle(new Error(`DTLS handshake failed: ${reason}`));
      else if (wasEstablished) this.options.onSessionEnd?.(reason);
      return;
    }
    clearTimeout(this.retransmitTimer);
    this.retransmitTimer = undefined;
    if (result.timeoutMs >= 0) {
      this.retransmitTimer = setTimeout(() => {
        if (this.session === session) this.apply(session, dtlsAddon.handleTimeout(session));
      }, result.timeoutMs + 1);
      this.retransmitTimer.unref();
    }
  }

  /** Frees the current session (close_notify when established); a handshake in progress rejects with `error`. */
  private endSession(error = new Error('DTLS session ended')): void {
    const session = this.session;
    clearTimeout(this.retransmitTimer);
    this.retransmitTimer = undefined;
    this.session = undefined;
    const notify = this.established;
    this.established = false;
    if (this.handshake) this.handshake.settle(error);
    if (session) this.transmit(dtlsAddon.close(session, notify, false));
  }

  private transmit(datagrams: readonly Buffer[]): void {
    if (this.closed) return;
    if (this.unreachable && !this.established) return;
    for (const datagram of datagrams) this.socket.send(datagram, this.options.server.port, this.options.server.address);
  }

  private portOrZero(): number {
    try {
      return this.socket.address().port;
    } catch {
      return 0;
    }
  }
}
