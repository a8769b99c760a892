/**
 * The native DTLS addon (dtls.c), typed. It is built by buildAddon.js (the root package's `install` script, and
 * connector/Dockerfile) into build/Release/dtls.node next to this file's source; the image copies it next to the
 * compiled file.
 * All handles are opaque; a Session or Context is freed when it is garbage-collected, a Session's SSL state at once
 * by close().
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

declare const opaque: unique symbol;
export type Context = { readonly [opaque]: 'DtlsContext' };
export type Session = { readonly [opaque]: 'DtlsSession' };
export type SavedSession = { readonly [opaque]: 'DtlsSavedSession' };

export interface ContextOptions {
  /** OpenSSL cipher string, e.g. 'PSK-AES128-CCM8:PSK-AES128-CBC-SHA256'. */
  ciphers: string;
  /** DTLS bytes per datagram (records and their headers, without IP and UDP headers); at least 256. */
  mtu: number;
}

export interface ServerContextOptions extends ContextOptions {
  /** Sessions kept for resumption (OpenSSL's server cache, oldest evicted first). */
  sessionCacheSize: number;
  /** How long a cached session may be resumed, in seconds. */
  sessionTimeoutSeconds: number;
}

/** What every session call returns. */
export interface SessionResult {
  /** Decrypted application records, in arrival order. Replayed, forged and stale records never appear. */
  plaintext: Buffer[];
  /** Datagrams to send to the peer now, in order (handshake flights, alerts, retransmissions). */
  toSend: Buffer[];
  /** The handshake finished during this call. */
  handshakeDone: boolean;
  /** The handshake is done and the session is not closed: encrypt() may be called. */
  established: boolean;
  /** The peer closed or the session failed; its SSL state is freed and it takes no further input. */
  closed: boolean;
  /** The handshake was abbreviated (a cached session resumed). */
  resumed: boolean;
  /** The PSK identity the peer proved, once established. */
  identity?: string;
  /** When the (resumed) session was first made, in seconds since the epoch; once established. */
  sessionTime?: number;
  /** OpenSSL's reason for closing, if it failed; never key material. */
  error?: string;
  /** Milliseconds until handleTimeout() is due (handshake retransmission), or -1 when no timer runs. */
  timeoutMs: number;
}

export interface DtlsAddon {
  /** lookupKey(identity) returns the PSK (1..256 bytes) or undefined for an unknown identity; it must not throw. */
  createServerContext(options: ServerContextOptions, lookupKey: (identity: string) => Buffer | undefined): Context;
  createClientContext(options: ContextOptions, identity: string, key: Buffer): Context;
  /** Cookies made under the secret before the previous one stop verifying. */
  rotateCookieSecret(context: Context): void;
  cachedSessions(context: Context): number;
  /** For a peer without a session: a HelloVerifyRequest (no state), nothing, or a new session after a valid cookie. */
  accept(context: Context, peer: string, datagram: Buffer): { toSend: Buffer[]; session?: Session };
  connect(context: Context, resume?: SavedSession): Session;
  /** datagram null: just drive the state machine (after accept or connect). */
  feed(session: Session, datagram: Buffer | null): SessionResult;
  handleTimeout(session: Session): SessionResult;
  /** One or more datagrams carrying plaintext (1..16384 bytes); throws unless established. */
  encrypt(session: Session, plaintext: Buffer): Buffer[];
  /**
   * Frees the session's SSL state; returns the close_notify alert to send when notify and established. forget also
   * removes the session from the server's resumption cache.
   */
  close(session: Session, notify: boolean, forget: boolean): Buffer[];
  saveSession(session: Session): SavedSession | undefined;
  /** The negotiated suite's OpenSSL name, once established. */
  cipher(session: Session): string | undefined;
}

const ADDON_PATHS = [
  path.join(__dirname, 'build', 'Release', 'dtls.node'),
  // the container image copies it next to the compiled file (connector/Dockerfile)
  path.join(__dirname, 'dtls.node'),
  // compiled by tsc into dist/connector/dtls while the addon stays in the source tree
  path.join(__dirname, '..', '..', '..', 'connector', 'dtls', 'build', 'Release', 'dtls.node'),
];

function loadAddon(): DtlsAddon {
  const found = ADDON_PATHS.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      `DTLS addon not built: run \`node connector/dtls/buildAddon.js\` (looked in ${ADDON_PATHS.join(', ')})`,
    );
  }
  const addon = { exports: {} };
  process.dlopen(addon, found);
  return addon.exports as DtlsAddon;
}

export const dtlsAddon: DtlsAddon = loadAddon();

/** The two suites LwM2M devices use, by IANA name, with OpenSSL's names. */
export const CIPHER_SUITES = {
  /** The LwM2M mandatory suite (LwM2M 1.1 Transport, 5.2.8.3); 8-byte CCM tag. */
  TLS_PSK_WITH_AES_128_CCM_8: 'PSK-AES128-CCM8',
  TLS_PSK_WITH_AES_128_CBC_SHA256: 'PSK-AES128-CBC-SHA256',
} as const;

export type CipherSuite = keyof typeof CIPHER_SUITES;

export const cipherString = (suites: readonly CipherSuite[]): string => suites.map((s) => CIPHER_SUITES[s]).join(':');
