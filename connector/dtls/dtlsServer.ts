/**
 * A DTLS 1.2 PSK server on one UDP socket: per-peer sessions over the native addon (dtlsAddon.ts), which does every
 * cryptographic and protocol step in Node's bundled OpenSSL; this class only routes datagrams, runs the handshake
 * retransmission timers and keeps the PSK map.
 *
 * Contracts:
 * - onDatagram gets each application record's plaintext once (OpenSSL's per-session replay window drops repeats),
 *   with the PSK identity the peer proved in its handshake.
 * - A datagram from an unknown peer costs at most one HelloVerifyRequest and no per-peer memory until it echoes a
 *   valid cookie (RFC 6347 4.2.1); at most `maxHandshakes` handshakes are in progress at once, beyond that new peers
 *   are ignored until some finish.
 * - A peer whose address or port changes can resume its session (abbreviated handshake, no PSK lookup) while the
 *   session is cached; a session made before its identity's key changed or was deleted is refused, and setKey or
 *   deleteKey ends the identity's live sessions. RFC 9146 Connection IDs are not available (OpenSSL 3.0 has none).
 * - A new ClientHello from the address of an established session (a device that restarted behind the same NAT
 *   mapping) goes through the cookie exchange and, once its handshake starts, replaces the old session.
 * - Keys are never logged or returned.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { CipherSuite, Context, Session, SessionResult, cipherString, dtlsAddon } from './dtlsAddon';

export interface DtlsPeer {
  address: string;
  port: number;
}

/** Why a session ended, as onSessionEnd reports it. */
export type SessionEndReason =
  | 'closedByPeer'
  | 'handshakeFailed'
  | 'ended' // endSession, close, key change
  | 'replaced' // a new handshake from the same address
  | 'staleResumption'; // resumed a session made before its identity's key changed

export interface DtlsServerOptions {
  /** Application records: plaintext and the PSK identity the session proved. */
  onDatagram: (peer: DtlsPeer, plaintext: Buffer, identity: string) => void;
  onSessionStart?: (peer: DtlsPeer, identity: string, info: { resumed: boolean; cipher: string }) => void;
  /** identity is undefined when the handshake never finished; error is OpenSSL's reason, never key material. */
  onSessionEnd?: (peer: DtlsPeer, identity: string | undefined, reason: SessionEndReason, error?: string) => void;
  /** Suites offered, in preference order; default both LwM2M suites, CCM_8 first. */
  cipherSuites?: readonly CipherSuite[];
  /** DTLS bytes per datagram; default 1152 (fits the IPv6 minimum MTU of 1280 with headers to spare). */
  mtu?: number;
  /** Sessions cached for resumption; default 100,000 (about 1 KB each in OpenSSL). */
  sessionCacheSize?: number;
  /** How long a session may be resumed, in seconds; default 86,400 (the LwM2M default lifetime). */
  sessionTimeoutSeconds?: number;
  /** The cookie secret is replaced this often (a cookie stays valid for up to twice this); default 60,000 ms. */
  cookieSecretRotationMs?: number;
  /** Handshakes in progress at most; default 10,000. */
  maxHandshakes?: number;
  /**
   * A handshake not done this long after its cookie was accepted fails; default 30,000 ms. (A wrong key shows only
   * as a Finished record that does not decrypt, which DTLS drops silently, so such a peer would otherwise hold its
   * state through OpenSSL's whole retransmission schedule.)
   */
  handshakeTimeoutMs?: number;
  /** Wall clock in ms (key-change times); default Date.now. */
  now?: () => number;
}

export interface DtlsServerStats {
  /** Sessions with their handshake done. */
  established: number;
  /** Sessions past the cookie exchange, handshake not done. */
  handshaking: number;
  /** Sessions in OpenSSL's resumption cache. */
  cachedSessions: number;
  helloVerifyRequests: number;
  fullHandshakes: number;
  resumedHandshakes: number;
  failedHandshakes: number;
  datagramsIn: number;
  /** Datagrams that produced no plaintext and no reply (replays, forgeries, strays, unknown peers at capacity). */
  datagramsDropped: number;
  recordsIn: number;
  recordsOut: number;
}

interface PeerSession {
  peer: DtlsPeer;
  session: Session;
  identity?: string;
  established: boolean;
  timer?: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
}

const DEFAULT_SUITES: readonly CipherSuite[] = ['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_CBC_SHA256'];

/** RFC 6347 4.1 record header: type(1) version(2) epoch(2) sequence(6) length(2); then handshake type. */
const RECORD_HEADER_BYTES = 13;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;

/** An epoch-0 ClientHello record: a peer starting a new handshake. */
function isClientHello(datagram: Buffer): boolean {
  return (
    datagram.length > RECORD_HEADER_BYTES &&
    datagram[0] === CONTENT_TYPE_HANDSHAKE &&
    datagram[3] === 0 &&
    datagram[4] === 0 &&
    datagram[RECORD_HEADER_BYTES] === HANDSHAKE_CLIENT_HELLO
  );
}

const peerKey = (peer: DtlsPeer): string => `${peer.address}:${peer.port}`;

export class DtlsServer {
  private readonly context: Context;
  private readonly sessions = new Map<string, PeerSession>();
  private readonly keys = new Map<string, Buffer>();
  /** identity -> wall-clock second of its last key change; older sessions may not resume. */
  private readonly keyChangedAt = new Map<string, number>();
  private socket?: dgram.Socket;
  private cookieTimer?: NodeJS.Timeout;
  private handshaking = 0;
  private readonly counters = {
    helloVerifyRequests: 0,
    fullHandshakes: 0,
    resumedHandshakes: 0,
    failedHandshakes: 0,
    datagramsIn: 0,
    datagramsDropped: 0,
    recordsIn: 0,
    recordsOut: 0,
  };
  private readonly now: () => number;
  private readonly maxHandshakes: number;

  constructor(private readonly options: DtlsServerOptions) {
    this.now = options.now ?? Date.now;
    this.maxHandshakes = options.maxHandshakes ?? 10_000;
    this.context = dtlsAddon.createServerContext(
      {
        ciphers: cipherString(options.cipherSuites ?? DEFAULT_SUITES),
        mtu: options.mtu ?? 1152,
        sessionCacheSize: options.sessionCacheSize ?? 100_000,
        sessionTimeoutSeconds: options.sessionTimeoutSeconds ?? 86_400,
      },
      (identity) => this.keys.get(identity),
    );
  }

  /** Binds the UDP socket; resolves with the bound address (port 0 picks a free one). */
  bind(address: string, port: number): Promise<DtlsPeer> {
    const socket = dgram.createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    this.socket = socket;
    socket.on('message', (datagram, rinfo) => this.receive({ address: rinfo.address, port: rinfo.port }, datagram));
    const rotation = this.options.cookieSecretRotationMs ?? 60_000;
    this.cookieTimer = setInterval(() => dtlsAddon.rotateCookieSecret(this.context), rotation).unref();
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        const bound = socket.address();
        resolve({ address: bound.address, port: bound.port });
      });
    });
  }

  /**
   * Installs or replaces an identity's PSK (the bytes are copied). A different key ends the identity's live sessions
   * and makes its cached sessions unresumable; the same key changes nothing.
   */
  setKey(identity: string, key: Buffer): void {
    const current = this.keys.get(identity);
    if (current?.equals(key)) return;
    this.keys.set(identity, Buffer.from(key));
    if (current) this.keyChanged(identity);
  }

  /** Forgets an identity's PSK: its live sessions end, its cached sessions cannot resume. */
  deleteKey(identity: string): void {
    if (this.keys.delete(identity)) this.keyChanged(identity);
  }

  /** Encrypts and sends plaintext on the peer's established session; false when there is none. */
  send(peer: DtlsPeer, plaintext: Buffer): boolean {
    const entry = this.sessions.get(peerKey(peer));
    if (!entry?.established) return false;
    this.transmit(entry.peer, dtlsAddon.encrypt(entry.session, plaintext));
    this.counters.recordsOut++;
    return true;
  }

  /** The identity of the peer's established session, if any. */
  identityOf(peer: DtlsPeer): string | undefined {
    const entry = this.sessions.get(peerKey(peer));
    return entry?.established ? entry.identity : undefined;
  }

  /** Ends the peer's session (close_notify when established); its cached session can still be resumed. */
  endSession(peer: DtlsPeer): void {
    const entry = this.sessions.get(peerKey(peer));
    if (entry) this.end(entry, 'ended', true);
  }

  stats(): DtlsServerStats {
    return {
      established: this.sessions.size - this.handshaking,
      handshaking: this.handshaking,
      cachedSessions: dtlsAddon.cachedSessions(this.context),
      ...this.counters,
    };
  }

  /** Ends every session (close_notify to established peers) and closes the socket. */
  async close(): Promise<void> {
    clearInterval(this.cookieTimer);
    for (const entry of [...this.sessions.values()]) this.end(entry, 'ended', true);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private keyChanged(identity: string): void {
    this.keyChangedAt.set(identity, Math.floor(this.now() / 1000));
    for (const entry of [...this.sessions.values()]) {
      if (entry.identity === identity) this.end(entry, 'ended', true, undefined, true);
    }
  }

  private receive(peer: DtlsPeer, datagram: Buffer): void {
    this.counters.datagramsIn++;
    const key = peerKey(peer);
    const existing = this.sessions.get(key);
    if (existing && !(existing.established && isClientHello(datagram))) {
      this.apply(existing, dtlsAddon.feed(existing.session, datagram));
      return;
    }
    if (this.handshaking >= this.maxHandshakes) {
      this.counters.datagramsDropped++;
      return;
    }
    const accepted = dtlsAddon.accept(this.context, key, datagram);
    this.transmit(peer, accepted.toSend);
    if (!accepted.session) {
      if (accepted.toSend.length > 0) this.counters.helloVerifyRequests++;
      else this.counters.datagramsDropped++;
      return;
    }
    if (existing) this.end(existing, 'replaced', false);
    // Every field declared at creation: one object shape, no out-of-object property storage per session.
    const entry: PeerSession = {
      peer,
      session: accepted.session,
      identity: undefined,
      established: false,
      timer: undefined,
      deadline: undefined,
    };
    entry.deadline = setTimeout(
      () => this.end(entry, 'handshakeFailed', false, 'handshake timed out'),
      this.options.handshakeTimeoutMs ?? 30_000,
    ).unref();
    this.sessions.set(key, entry);
    this.handshaking++;
    this.apply(entry, dtlsAddon.feed(entry.session, null));
  }

  /** Acts on one session call's result: send, deliver, start or stop timers, account. */
  private apply(entry: PeerSession, result: SessionResult): void {
    this.transmit(entry.peer, result.toSend);
    if (result.handshakeDone) {
      const identity = result.identity ?? '';
      const changedAt = this.keyChangedAt.get(identity);
      if (
        result.resumed &&
        (!this.keys.has(identity) || (changedAt !== undefined && (result.sessionTime ?? 0) <= changedAt))
      ) {
        this.end(entry, 'staleResumption', true, undefined, true);
        return;
      }
      clearTimeout(entry.deadline);
      entry.deadline = undefined; // a cleared Timeout is still an object; an established session keeps none
      entry.identity = identity;
      entry.established = true;
      this.handshaking--;
      this.counters[result.resumed ? 'resumedHandshakes' : 'fullHandshakes']++;
      this.options.onSessionStart?.(entry.peer, identity, {
        resumed: result.resumed,
        cipher: dtlsAddon.cipher(entry.session) ?? '',
      });
    }
    if (result.plaintext.length === 0 && result.toSend.length === 0 && !result.handshakeDone) {
      this.counters.datagramsDropped++;
    }
    for (const plaintext of result.plaintext) {
      this.counters.recordsIn++;
      if (entry.identity !== undefined) this.options.onDatagram(entry.peer, plaintext, entry.identity);
    }
    if (result.closed) {
      this.end(entry, entry.established ? 'closedByPeer' : 'handshakeFailed', false, result.error);
      return;
    }
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (result.timeoutMs >= 0) {
      entry.timer = setTimeout(() => this.apply(entry, dtlsAddon.handleTimeout(entry.session)), result.timeoutMs + 1);
      entry.timer.unref();
    }
  }

  private end(entry: PeerSession, reason: SessionEndReason, notify: boolean, error?: string, forget = false): void {
    const key = peerKey(entry.peer);
    if (this.sessions.get(key) !== entry) return;
    this.sessions.delete(key);
    clearTimeout(entry.timer);
    clearTimeout(entry.deadline);
    if (!entry.established) {
      this.handshaking--;
      if (reason === 'handshakeFailed' || reason === 'staleResumption') this.counters.failedHandshakes++;
    }
    this.transmit(entry.peer, dtlsAddon.close(entry.session, notify, forget));
    this.options.onSessionEnd?.(entry.peer, entry.identity, reason, error);
  }

  private transmit(peer: DtlsPeer, datagrams: readonly Buffer[]): void {
    for (const datagram of datagrams) this.socket?.send(datagram, peer.port, peer.address);
  }
}
