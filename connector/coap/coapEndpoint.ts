/**
 * One CoAP endpoint on one datagram transport (a UDP socket, or DTLS sessions over one): the message layer
 * (RFC 7252 §4) and the client side of Observe (RFC 7641).
 *
 * Why not the `coap` package's Server and Agent: this connector needs, per device, (1) requests that leave from the
 * socket the device registered to, (2) NSTART = 1 with a queue per peer, (3) RFC 7641 ordering per observation,
 * (4) a few hundred bytes of state per observation (the package's observe streams are Node streams, and its
 * server caches every response for EXCHANGE_LIFETIME), and (5) strict parsing of hostile datagrams. The package's
 * Server and Agent share no socket cleanly (each ignores the other's half), so both halves live here, on one socket.
 * Per-peer state is kept small for the same reason (thousands of devices with ~20 observations each): a peer's
 * exchanges and observations live in one array of its own, found by a linear search.
 *
 * Contracts:
 * - Incoming Confirmable requests are deduplicated by (peer, message ID) for EXCHANGE_LIFETIME (bounded memory):
 *   a duplicate gets the same response again, or nothing while the first copy is still being handled.
 * - Incoming Confirmable responses and notifications are acknowledged, duplicates included; duplicates and
 *   out-of-order notifications are not delivered twice; one for a token nobody waits for is rejected with RST.
 * - Outgoing requests are Confirmable, retransmitted per §4.2, at most NSTART outstanding per peer, the rest queued
 *   in order; each fails with `CoapTimeoutError` at its deadline (queueing included) or after the last
 *   retransmission, `CoapResetError` on RST, `CoapCancelledError` when the peer is forgotten or the endpoint closes.
 * - Block-wise (RFC 7959, blockwise.ts): a Block1 request reaches the handler once, whole; a request whose payload
 *   exceeds the peer's block size goes as Block1; a response or notification that comes as Block2 resolves or is
 *   delivered only whole (its remaining blocks fetched first, ahead of the peer's queued requests), else the request
 *   fails with `CoapBlockwiseError` and the notification is dropped and logged. Limits: coapParameters.ts.
 */
import { randomInt } from 'node:crypto';
import { Logger, ThrottledWarnings } from '../logger';
import { Block1Reassembler, OutgoingTransfer, blockSize, needsTransfer } from './blockwise';
import {
  CoapFormatError,
  CoapMessage,
  CoapOption,
  Code,
  MessageType,
  OptionNumber,
  decodeMessage,
  encodeEmpty,
  encodeMessage,
  encodeWithin,
  formatCode,
  isRequestCode,
  isResponseCode,
  isSuccessCode,
  readUintOption,
  uintOption,
  unknownCriticalOptions,
} from './coapMessage';
import {
  ACK_RANDOM_FACTOR,
  ACK_TIMEOUT_MS,
  BLOCK1_REASSEMBLY_LIFETIME_MS,
  BLOCK2_NOTIFICATION_FETCH_TIMEOUT_MS,
  DEFAULT_BLOCK_SZX,
  EXCHANGE_LIFETIME_MS,
  MAX_BLOCK1_BODY_BYTES,
  MAX_BLOCK1_REASSEMBLIES,
  MAX_BLOCK1_REASSEMBLIES_PER_PEER,
  MAX_BLOCK2_BODY_BYTES,
  MAX_MESSAGE_SIZE,
  MAX_RETRANSMIT,
  MESSAGE_ID_MODULUS,
  NON_LIFETIME_MS,
  NSTART,
  OBSERVE_FRESHNESS_SECONDS,
} from './coapParameters';
import { DatagramTransport, UdpTransport } from './datagramTransport';
import { LastNotification, isNewerNotification } from './observeOrder';

export interface Peer {
  readonly address: string;
  readonly port: number;
}

/**
 * `address#port`. Built by `join`, which makes one flat string: a template literal keeps a tree of its pieces (more
 * bytes for each key kept).
 */
export function peerKey(peer: Peer): string {
  return [peer.address, peer.port].join('#');
}

/**
 * An observation's handle, for `cancelObservation` and `restoreObservation`: the 4-byte token as a signed 32-bit
 * integer (a small integer in V8, and less memory than the token's Buffer, a view that would keep its whole datagram
 * alive). Stable across restarts: a stored handle restores the same token.
 */
export type ObservationHandle = number;

/** The handle of the observation a response established (from its token); NaN when the token is not ours. */
export function observationHandle(response: CoapMessage): ObservationHandle {
  return response.token.length === TOKEN_LENGTH ? response.token.readInt32BE(0) : Number.NaN;
}

export interface OutgoingRequest {
  code: number;
  options: CoapOption[];
  payload?: Buffer;
}

export interface ResponseSpec {
  code: number;
  options?: CoapOption[];
  payload?: Buffer;
}

/** Handles a request from a peer arriving on `endpoint`; the endpoint sends the result as the (piggybacked) response. */
export type RequestHandler = (request: CoapMessage, peer: Peer, endpoint: CoapEndpoint) => Promise<ResponseSpec>;

/**
 * Receives the notifications of established observations; `final` when one ends its observation (no Observe, or an
 * error code). One listener may serve many observations (a device's), told apart by the `subject` each was
 * established with: an object rather than a closure per observation, as there are ~20 per device.
 */
export interface NotificationListener<Subject = unknown> {
  onNotification(subject: Subject, notification: CoapMessage, final: boolean): void;
}

export interface RequestOptions<Subject = unknown> {
  /** Bound on the whole exchange, queueing and retransmissions included, ms. */
  timeoutMs: number;
  /** Makes the request an observation: after a 2.xx response carrying Observe, later notifications come here. */
  onNotification?: NotificationListener<Subject>;
  /** What the observation's notifications are about (a resource), handed to `onNotification` with each. */
  subject?: Subject;
}

export class CoapTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoapTimeoutError';
  }
}

export class CoapResetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoapResetError';
  }
}

export class CoapCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoapCancelledError';
  }
}

/** A block-wise response could not be had whole (a later block failed, too large, inconsistent blocks). */
export class CoapBlockwiseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoapBlockwiseError';
  }
}

export interface EndpointStats {
  datagramsIn: number;
  malformed: number;
  requestsIn: number;
  duplicateRequests: number;
  responsesIn: number;
  duplicateResponses: number;
  notifications: number;
  staleNotifications: number;
  requestsOut: number;
  retransmissions: number;
  timeouts: number;
  resetsSent: number;
}

export interface EndpointDependencies {
  log: Logger;
  now: () => number;
  onRequest: RequestHandler;
  /**
   * A notification (a CON or NON response) from `peer` matched none of its observations and got RST; `handle` is its
   * token as an observation handle (NaN when not 4 bytes). Lets the server notice a device observing in a context
   * it lost (default: nothing).
   */
  onUnmatchedNotification?: (peer: Peer, handle: ObservationHandle) => void;
}

/** Requests remembered for deduplication at most; the oldest are forgotten first beyond this. */
const MAX_REMEMBERED_REQUESTS = 20_000;
/**
 * Message IDs of responses remembered per peer to spot retransmitted notifications (ids are sequential per peer). As
 * 16-bit numbers they take 64 bytes, which V8 keeps on its heap (a larger typed array gets a separate allocation).
 */
const RECENT_IDS_PER_PEER = 32;
/** How often remembered requests past their lifetime are forgotten (without new requests to make room), ms. */
const REMEMBERED_REQUESTS_SWEEP_MS = 10_000;
/**
 * Tokens are 4 random bytes (RFC 7252 §5.3.1: at least 32 bits of randomness when not protected by DTLS, so an
 * off-path attacker cannot guess one), unique among the live exchanges and observations of their peer (a response
 * only ever matches within its peer, §5.3.2), held as signed 32-bit integers: made with `| 0`, so V8 stores them
 * unboxed (memory per observation).
 */
const TOKEN_LENGTH = 4;
const TOKEN_MIN = -(2 ** 31);
const TOKEN_MAX_EXCLUSIVE = 2 ** 31;
/** Options a request to this endpoint may carry; any other critical option gets 4.02 Bad Option (§5.4.1). */
const UNDERSTOOD_REQUEST_OPTIONS: ReadonlySet<number> = new Set([
  OptionNumber.URI_HOST,
  OptionNumber.URI_PORT,
  OptionNumber.URI_PATH,
  OptionNumber.URI_QUERY,
  OptionNumber.ACCEPT,
  OptionNumber.IF_MATCH,
  OptionNumber.IF_NONE_MATCH,
  // Block1 is reassembled before the handler; Block2 (a size preference) is taken and responses are sent whole,
  // as every response of this endpoint fits one message.
  OptionNumber.BLOCK1,
  OptionNumber.BLOCK2,
  OptionNumber.SIZE1,
]);
/** Distinct Block2 follow-up option lists kept for observations (shared: one per observed URI and Accept). */
const MAX_FOLLOW_UP_SHAPES = 1024;

interface PeerState {
  key: string;
  peer: Peer;
  /** Waiting for an NSTART slot, in order. A drained queue is replaced by an empty array (it kept its capacity). */
  queue: Exchange[];
  /** Exchanges holding an NSTART slot (sent, neither acknowledged nor answered). */
  outstanding: number;
  nextMessageId: number;
  /** The last RECENT_IDS_PER_PEER message IDs of separate responses and notifications from the peer, a ring. */
  recentIds: Uint16Array;
  /** Message IDs recorded in `recentIds` so far (the ring is full from RECENT_IDS_PER_PEER on). */
  recentCount: number;
  /**
   * This peer's exchanges and observations (~20 per device), found by token with a linear search: less memory than
   * an endpoint-wide Map by token. Copied to its length once the peer has nothing pending (an array keeps the
   * capacity it grew to).
   */
  entries: (Exchange | Observation)[];
  /** Set once the peer is forgotten: nothing more is sent to it. */
  forgotten: boolean;
  /** Size exponent of the Block1 blocks sent to it: DEFAULT_BLOCK_SZX, or smaller once it asked for smaller. */
  blockSzx: number;
}

interface Exchange {
  state: PeerState;
  request: OutgoingRequest;
  token: number;
  /** Of the datagram last sent, while it waits for its ACK (or piggybacked response); -1 before and after. */
  messageId: number;
  datagram: Buffer | undefined;
  retransmissions: number;
  retransmitTimer: NodeJS.Timeout | undefined;
  deadlineTimer: NodeJS.Timeout;
  holdsSlot: boolean;
  settled: boolean;
  onNotification: NotificationListener | undefined;
  subject: unknown;
  /** Set once a response made this exchange block-wise. */
  transfer: OutgoingTransfer | undefined;
  /** The token of the observation its first Block2 block established (cancelled if the rest fails). */
  observed: number | undefined;
  resolve: (message: CoapMessage) => void;
  reject: (error: Error) => void;
}

/** An established observation: a class, so it is told from an `Exchange` without a field saying so (~20 per peer). */
class Observation implements LastNotification {
  constructor(
    readonly token: number,
    readonly listener: NotificationListener,
    readonly subject: unknown,
    /** Uri-Path and Accept of the observe request: the GETs fetching a block-wise notification's remaining blocks. */
    readonly followUp: readonly CoapOption[] | undefined,
    public sequence: number,
    public arrivedAt: number,
  ) {}
}

interface RememberedRequest {
  expiresAt: number;
  /** The encoded response, once the handler answered; resent for duplicates. */
  response: Buffer | undefined;
}

export class CoapEndpoint {
  readonly stats: EndpointStats = {
    datagramsIn: 0,
    malformed: 0,
    requestsIn: 0,
    duplicateRequests: 0,
    responsesIn: 0,
    duplicateResponses: 0,
    notifications: 0,
    staleNotifications: 0,
    requestsOut: 0,
    retransmissions: 0,
    timeouts: 0,
    resetsSent: 0,
  };

  private readonly peers = new Map<string, PeerState>();
  private readonly rememberedRequests = new Map<string, RememberedRequest>();
  /** Forgets expired remembered requests while there are any (unref'd: it does not keep the process alive). */
  private rememberedSweep: NodeJS.Timeout | undefined;
  private readonly block1 = new Block1Reassembler({
    maxBodyBytes: MAX_BLOCK1_BODY_BYTES,
    maxReassemblies: MAX_BLOCK1_REASSEMBLIES,
    maxPerPeer: MAX_BLOCK1_REASSEMBLIES_PER_PEER,
    lifetimeMs: BLOCK1_REASSEMBLY_LIFETIME_MS,
  });
  /** Observations whose notification's remaining blocks are being fetched -> fetch number (newest wins). */
  private readonly blockFetches = new Map<Observation, number>();
  private blockFetchCount = 0;
  private readonly followUpShapes = new Map<string, readonly CoapOption[]>();
  private readonly dropped: ThrottledWarnings;
  private readonly startedAt: number;
  private nextResponseMessageId = randomInt(MESSAGE_ID_MODULUS);
  private closed = false;

  private constructor(
    private readonly transport: DatagramTransport,
    private readonly deps: EndpointDependencies,
  ) {
    this.dropped = new ThrottledWarnings(deps.log, deps.now);
    this.startedAt = deps.now();
    transport.listen((datagram, peer) => this.receive(datagram, peer));
  }

  /** Binds a UDP socket (IPv6 for an IPv6 address, dual-stack for `::`) and serves plain CoAP on it. */
  static async bind(address: string, port: number, deps: EndpointDependencies): Promise<CoapEndpoint> {
    const transport = await UdpTransport.bind(address, port, (error) =>
      deps.log.error('CoAP socket error', { error: error.message }),
    );
    return new CoapEndpoint(transport, deps);
  }

  /** Serves CoAP over `transport` (for example DTLS sessions). */
  static over(transport: DatagramTransport, deps: EndpointDependencies): CoapEndpoint {
    return new CoapEndpoint(transport, deps);
  }

  get port(): number {
    return this.transport.port;
  }

  /** The identity `peer` authenticated with on this endpoint's transport (DTLS PSK identity), if any. */
  identityOf(peer: Peer): string | undefined {
    return this.transport.identityOf(peer);
  }

  /** Ends the peer's transport session (DTLS), after `forgetPeer`: a registration that ended frees its session. */
  endSession(peer: Peer): void {
    this.transport.endSession(peer);
  }

  get observationCount(): number {
    let count = 0;
    for (const state of this.peers.values()) {
      for (const entry of state.entries) if (entry instanceof Observation) count++;
    }
    return count;
  }

  /**
   * Sends a Confirmable request to `peer` (queued behind the peer's outstanding one, NSTART = 1) and resolves with
   * its response, whatever the response code. See the class comment for the errors.
   */
  request<Subject>(peer: Peer, request: OutgoingRequest, options: RequestOptions<Subject>): Promise<CoapMessage> {
    if (this.closed) return Promise.reject(new CoapCancelledError('the CoAP endpoint is closed'));
    const state = this.peerState(peer, true) as PeerState;
    let transfer: OutgoingTransfer | undefined;
    let first = request;
    if (request.payload && request.payload.length > blockSize(state.blockSzx)) {
      transfer = new OutgoingTransfer(request, MAX_BLOCK2_BODY_BYTES);
      first = transfer.start(state.blockSzx);
    }
    return this.startExchange(state, first, options.timeoutMs, options, transfer);
  }

  private startExchange(
    state: PeerState,
    request: OutgoingRequest,
    timeoutMs: number,
    observe: Pick<RequestOptions, 'onNotification' | 'subject'>,
    transfer: OutgoingTransfer | undefined,
  ): Promise<CoapMessage> {
    return new Promise<CoapMessage>((resolve, reject) => {
      const exchange: Exchange = {
        state,
        request,
        token: this.allocateToken(state),
        messageId: -1,
        datagram: undefined,
        retransmissions: 0,
        retransmitTimer: undefined,
        deadlineTimer: setTimeout(
          () => this.fail(exchange, new CoapTimeoutError(`no response within ${timeoutMs} ms`)),
          timeoutMs,
        ),
        holdsSlot: false,
        settled: false,
        onNotification: observe.onNotification,
        subject: observe.subject,
        transfer,
        observed: undefined,
        resolve,
        reject,
      };
      state.entries.push(exchange);
      state.queue.push(exchange);
      this.pump(state);
    });
  }

  /**
   * Re-creates an observation this endpoint (or a previous run of the connector) established with `peer` under
   * `handle`, so the device's notifications for it are accepted again (after a restart). Its first notification is
   * taken whatever its sequence number (RFC 7641 §3.4: more than 128 s since the last one known); its notifications
   * go to `listener` with `subject`. False when the handle is in use with `peer` already, or not a 32-bit integer.
   */
  restoreObservation<Subject>(
    peer: Peer,
    handle: ObservationHandle,
    listener: NotificationListener<Subject>,
    subject: Subject,
    /** The observe request's options (Uri-Path, Accept): without them a block-wise notification cannot be fetched. */
    request?: readonly CoapOption[],
  ): boolean {
    if (this.closed || handle !== (handle | 0)) return false;
    const state = this.peerState(peer, true) as PeerState;
    if (findEntry(state, handle)) return false;
    const observation = new Observation(
      handle | 0,
      listener,
      subject,
      request && this.followUpOptions(request),
      0,
      this.elapsedSeconds() - OBSERVE_FRESHNESS_SECONDS - 1,
    );
    state.entries.push(observation);
    return true;
  }

  /** Stops delivering `peer`'s observation `handle`; the device's next notification on it gets RST (§3.6). */
  cancelObservation(peer: Peer, handle: ObservationHandle): void {
    const state = this.peers.get(peerKey(peer));
    if (state) this.removeObservation(state, handle);
  }

  private removeObservation(state: PeerState, handle: ObservationHandle): void {
    const entry = findEntry(state, handle);
    if (!(entry instanceof Observation)) return;
    removeEntry(state, entry);
    this.settle(state);
  }

  /** The peer moved (NAT rebinding, reboot): its queue, exchanges and observations follow it to the new address. */
  movePeer(from: Peer, to: Peer): void {
    const state = this.peers.get(peerKey(from));
    if (!state || peerKey(from) === peerKey(to)) return;
    this.forgetPeer(to, 'another device took over this address');
    this.peers.delete(state.key);
    state.key = peerKey(to);
    state.peer = to;
    this.peers.set(state.key, state);
  }

  /** Fails the peer's queued and outstanding requests and ends its observations (deregistration, expiry). */
  forgetPeer(peer: Peer, reason: string): void {
    const state = this.peers.get(peerKey(peer));
    if (!state) return;
    this.peers.delete(state.key);
    state.forgotten = true;
    const entries = state.entries;
    state.entries = [];
    for (const entry of entries) if (!(entry instanceof Observation)) this.fail(entry, new CoapCancelledError(reason));
  }

  /** Fails everything pending and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const state of [...this.peers.values()]) this.forgetPeer(state.peer, 'the CoAP endpoint is closing');
    this.rememberedRequests.clear();
    clearInterval(this.rememberedSweep);
    await this.transport.close();
  }

  // ---- receiving ----

  private receive(datagram: Buffer, peer: Peer): void {
    this.stats.datagramsIn++;
    let message: CoapMessage;
    try {
      message = decodeMessage(datagram);
    } catch (error) {
      this.stats.malformed++;
      const reason = error instanceof Error ? error.message : String(error);
      this.dropped.warn('dropped malformed CoAP datagram', { peer: peerKey(peer), bytes: datagram.length, reason });
      // §4.2: a Confirmable message with a format error is rejected with RST (when its header is readable).
      if (error instanceof CoapFormatError && error.header?.type === MessageType.CON) {
        this.sendReset(peer, error.header.messageId);
      }
      return;
    }
    try {
      this.dispatch(message, peer);
    } catch (error) {
      this.deps.log.error('error handling a CoAP message', { peer: peerKey(peer), error: describe(error) });
    }
  }

  private dispatch(message: CoapMessage, peer: Peer): void {
    if (message.code === Code.EMPTY) return this.receiveEmpty(message, peer);
    if (message.type === MessageType.RST) return this.drop(peer, 'RST carrying a code');
    if (isRequestCode(message.code)) {
      if (message.type === MessageType.ACK) return this.drop(peer, 'ACK carrying a request code');
      return this.receiveRequest(message, peer);
    }
    if (isResponseCode(message.code)) return this.receiveResponse(message, peer);
    // Reserved classes 1, 6, 7 (§4.2): reject a Confirmable one, ignore the rest.
    if (message.type === MessageType.CON) this.sendReset(peer, message.messageId);
    this.drop(peer, `reserved code ${formatCode(message.code)}`);
  }

  private receiveEmpty(message: CoapMessage, peer: Peer): void {
    if (message.type === MessageType.CON) {
      // A CoAP ping (§4.3): answered with RST.
      this.sendReset(peer, message.messageId);
      return;
    }
    if (message.type === MessageType.NON) return this.drop(peer, 'Empty NON message');
    const state = this.peers.get(peerKey(peer));
    const exchange = state && unacknowledged(state, message.messageId);
    if (!exchange) return; // A late or duplicate ACK/RST: nothing waits for it.
    exchange.messageId = -1;
    this.stopRetransmitting(exchange);
    if (message.type === MessageType.RST) {
      this.fail(exchange, new CoapResetError('the device answered the request with RST'));
      return;
    }
    // Empty ACK: the response comes separately (§5.2.2); the interaction is no longer outstanding (§4.7).
    this.releaseSlot(exchange);
  }

  private receiveRequest(message: CoapMessage, peer: Peer): void {
    this.stats.requestsIn++;
    const key = `${peerKey(peer)}/${message.messageId}`;
    const now = this.deps.now();
    const remembered = this.rememberedRequests.get(key);
    if (remembered && remembered.expiresAt > now) {
      this.stats.duplicateRequests++;
      if (remembered.response) this.send(peer, remembered.response);
      return;
    }
    const lifetime = message.type === MessageType.CON ? EXCHANGE_LIFETIME_MS : NON_LIFETIME_MS;
    const entry: RememberedRequest = { expiresAt: now + lifetime, response: undefined };
    this.remember(key, entry, now);
    const unknown = unknownCriticalOptions(message, UNDERSTOOD_REQUEST_OPTIONS);
    const answer =
      unknown.length > 0
        ? Promise.resolve<ResponseSpec>({
            code: Code.BAD_OPTION,
            payload: Buffer.from(`unsupported critical option ${unknown.join(', ')}`),
          })
        : this.handle(message, peer, now);
    void answer.then((spec) => {
      if (this.closed) return;
      const response = this.encodeResponse(message, spec);
      // Kept for EXCHANGE_LIFETIME: a copy of its own, so it does not pin an 8 KB slab of Node's Buffer pool.
      entry.response = Buffer.allocUnsafeSlow(response.length);
      response.copy(entry.response);
      this.send(peer, response);
    });
  }

  /** The handler's answer to a request, once its Block1 blocks (if any) are reassembled; 2.31 or a refusal before. */
  private handle(message: CoapMessage, peer: Peer, now: number): Promise<ResponseSpec> {
    const outcome = this.block1.take(message, peerKey(peer), now);
    if (outcome.kind === 'answer') return Promise.resolve(outcome.response);
    const { echo } = outcome;
    return this.deps.onRequest(outcome.request, peer, this).then(
      // §2.3: the final response carries the Block1 of the last block.
      (spec): ResponseSpec => (echo ? { ...spec, options: [...(spec.options ?? []), echo] } : spec),
      (error: unknown): ResponseSpec => {
        this.deps.log.error('request handler failed', { peer: peerKey(peer), error: describe(error) });
        return { code: Code.INTERNAL_SERVER_ERROR };
      },
    );
  }

  /**
   * The response datagram, at most MAX_MESSAGE_SIZE bytes: a diagnostic payload that does not fit is cut (the code
   * stays), anything else that does not fit becomes 5.00 with no payload.
   */
  private encodeResponse(request: CoapMessage, spec: ResponseSpec): Buffer {
    const piggybacked = request.type === MessageType.CON;
    const message: CoapMessage = {
      type: piggybacked ? MessageType.ACK : MessageType.NON,
      code: spec.code,
      messageId: piggybacked ? request.messageId : this.allocateResponseMessageId(),
      token: request.token,
      options: spec.options ?? [],
      payload: spec.payload ?? Buffer.alloc(0),
    };
    return (
      encodeWithin(message, MAX_MESSAGE_SIZE) ??
      encodeMessage({ ...message, code: Code.INTERNAL_SERVER_ERROR, options: [], payload: Buffer.alloc(0) })
    );
  }

  private receiveResponse(message: CoapMessage, peer: Peer): void {
    this.stats.responsesIn++;
    const state = this.peers.get(peerKey(peer));
    if (message.type === MessageType.ACK) {
      const exchange = state && unacknowledged(state, message.messageId);
      if (!exchange) return; // Late or duplicate piggybacked response.
      if (!this.tokenMatches(message.token, exchange.token)) {
        return this.drop(peer, 'piggybacked response with a token that does not match its request');
      }
      exchange.messageId = -1;
      return this.complete(exchange, message);
    }
    // A separate response or a notification (CON or NON).
    const entry = state && message.token.length === TOKEN_LENGTH && findEntry(state, message.token.readInt32BE(0));
    if (!state || !entry) {
      // Nobody waits for it (for example a cancelled observation): reject it (RFC 7641 §3.6).
      this.sendReset(peer, message.messageId);
      this.deps.onUnmatchedNotification?.(peer, observationHandle(message));
      return;
    }
    if (message.type === MessageType.CON) this.send(peer, encodeEmpty(MessageType.ACK, message.messageId));
    if (this.seenRecently(state, message.messageId)) {
      this.stats.duplicateResponses++;
      return;
    }
    if (!(entry instanceof Observation)) {
      entry.messageId = -1;
      return this.complete(entry, message);
    }
    this.deliver(state, entry, message);
  }

  private deliver(state: PeerState, observation: Observation, message: CoapMessage): void {
    const sequence = readUintOption(message, OptionNumber.OBSERVE);
    const final = !isSuccessCode(message.code) || sequence === undefined || Number.isNaN(sequence);
    if (final) {
      removeEntry(state, observation);
      this.settle(state);
    } else {
      const now = this.elapsedSeconds();
      if (!isNewerNotification(observation, sequence, now)) {
        this.stats.staleNotifications++;
        return;
      }
      observation.sequence = sequence | 0;
      observation.arrivedAt = now;
    }
    this.stats.notifications++;
    // A newer notification supersedes one whose blocks are still being fetched.
    if (this.blockFetches.size > 0) this.blockFetches.delete(observation);
    if (isSuccessCode(message.code) && hasBlock2(message)) {
      return this.fetchNotification(state, observation, message, final);
    }
    observation.listener.onNotification(observation.subject, message, final);
  }

  /**
   * Fetches the remaining blocks of a block-wise notification with GETs of the observed URI (RFC 7959 §3.4) and
   * delivers it whole, unless a newer notification came meanwhile; drops and logs it when a block fails.
   */
  private fetchNotification(peerState: PeerState, observation: Observation, first: CoapMessage, final: boolean): void {
    const { listener, subject } = observation;
    const dropped = (reason: string) =>
      this.dropped.warn('dropped a block-wise notification', { peer: peerKey(peerState.peer), reason });
    if (peerState.forgotten) return;
    // The peer's live state (a final notification may have let an idle one go).
    const state = this.peerState(peerState.peer, true) as PeerState;
    if (!observation.followUp) return dropped('the observed URI is not known (a restored observation)');
    const transfer = new OutgoingTransfer(
      { code: Code.GET, options: [...observation.followUp] },
      MAX_BLOCK2_BODY_BYTES,
    );
    const step = transfer.next(first);
    if (step.kind === 'fail') return dropped(step.reason);
    if (step.kind === 'done') return listener.onNotification(subject, step.response, final);
    const fetch = ++this.blockFetchCount;
    this.blockFetches.set(observation, fetch);
    const current = () => this.blockFetches.get(observation) === fetch;
    this.startExchange(state, step.request, BLOCK2_NOTIFICATION_FETCH_TIMEOUT_MS, {}, transfer).then(
      (whole) => {
        if (!current()) return;
        this.blockFetches.delete(observation);
        if (final || peerState.entries.includes(observation)) listener.onNotification(subject, whole, final);
      },
      (error: unknown) => {
        if (current()) this.blockFetches.delete(observation);
        dropped(describe(error));
      },
    );
  }

  /** Whether this message ID came from the peer recently (a retransmission); records it if not. */
  private seenRecently(state: PeerState, messageId: number): boolean {
    const recorded = Math.min(state.recentCount, RECENT_IDS_PER_PEER);
    for (let i = 0; i < recorded; i++) if (state.recentIds[i] === messageId) return true;
    state.recentIds[state.recentCount % RECENT_IDS_PER_PEER] = messageId;
    state.recentCount++;
    return false;
  }

  // ---- sending ----

  private pump(state: PeerState): void {
    if (state.forgotten) return;
    while (state.outstanding < NSTART && state.queue.length > 0) {
      const exchange = state.queue.shift() as Exchange;
      this.start(exchange);
    }
    this.settle(state);
  }

  private start(exchange: Exchange): void {
    const { state, request } = exchange;
    exchange.messageId = state.nextMessageId;
    state.nextMessageId = ((state.nextMessageId + 1) % MESSAGE_ID_MODULUS) | 0;
    const token = Buffer.allocUnsafe(TOKEN_LENGTH);
    token.writeInt32BE(exchange.token, 0);
    try {
      exchange.datagram = encodeMessage({
        type: MessageType.CON,
        code: request.code,
        messageId: exchange.messageId,
        token,
        options: request.options,
        payload: request.payload ?? Buffer.alloc(0),
      });
    } catch (error) {
      this.fail(exchange, error instanceof Error ? error : new Error(String(error)));
      return;
    }
    exchange.holdsSlot = true;
    state.outstanding++;
    this.stats.requestsOut++;
    this.send(state.peer, exchange.datagram);
    this.scheduleRetransmission(exchange, ACK_TIMEOUT_MS * (1 + Math.random() * (ACK_RANDOM_FACTOR - 1)));
  }

  /** §4.2: retransmit after `timeoutMs`, doubling each time, MAX_RETRANSMIT times; then give up. */
  private scheduleRetransmission(exchange: Exchange, timeoutMs: number): void {
    exchange.retransmitTimer = setTimeout(() => {
      if (exchange.settled) return;
      if (exchange.retransmissions >= MAX_RETRANSMIT) {
        this.fail(
          exchange,
          new CoapTimeoutError(`no acknowledgement after ${MAX_RETRANSMIT} retransmissions (MAX_TRANSMIT_WAIT)`),
        );
        return;
      }
      exchange.retransmissions++;
      this.stats.retransmissions++;
      this.send(exchange.state.peer, exchange.datagram as Buffer);
      this.scheduleRetransmission(exchange, timeoutMs * 2);
    }, timeoutMs);
  }

  private stopRetransmitting(exchange: Exchange): void {
    if (exchange.retransmitTimer) clearTimeout(exchange.retransmitTimer);
    exchange.retransmitTimer = undefined;
  }

  private complete(exchange: Exchange, response: CoapMessage): void {
    if (exchange.settled) return;
    let whole = response;
    if (exchange.transfer || needsTransfer(exchange.request, response)) {
      exchange.transfer ??= new OutgoingTransfer(exchange.request, MAX_BLOCK2_BODY_BYTES);
      const step = exchange.transfer.next(response);
      if (step.kind === 'fail') return this.fail(exchange, new CoapBlockwiseError(step.reason));
      const szx = exchange.transfer.block1Szx;
      if (szx !== undefined && szx < exchange.state.blockSzx) exchange.state.blockSzx = szx;
      if (step.kind === 'send') {
        const observation = this.establishObservation(exchange, response);
        if (observation) exchange.state.entries.push(observation);
        return this.continueExchange(exchange, step.request);
      }
      whole = step.response;
    }
    exchange.settled = true;
    this.stopRetransmitting(exchange);
    clearTimeout(exchange.deadlineTimer);
    const observation = this.establishObservation(exchange, response);
    // The observation takes the exchange's place (and token) among the peer's entries.
    const at = exchange.state.entries.indexOf(exchange);
    if (at >= 0 && observation) exchange.state.entries[at] = observation;
    else if (at >= 0) exchange.state.entries.splice(at, 1);
    this.releaseSlot(exchange);
    exchange.resolve(whole);
  }

  /**
   * The observation under the exchange's token, when `response` (its first block) established one. Once only: the
   * exchange then carries on under another token (`continueExchange`) or ends.
   */
  private establishObservation(exchange: Exchange, response: CoapMessage): Observation | undefined {
    const listener = exchange.onNotification;
    const observe = readUintOption(response, OptionNumber.OBSERVE);
    if (!listener || !isSuccessCode(response.code) || observe === undefined || Number.isNaN(observe)) return undefined;
    exchange.onNotification = undefined;
    exchange.observed = exchange.token;
    return new Observation(
      exchange.token,
      listener,
      exchange.subject,
      this.followUpOptions(exchange.request.options),
      observe | 0,
      this.elapsedSeconds(),
    );
  }

  /**
   * Sends the next block of a block-wise exchange: a new message under a new token (a late answer to an earlier
   * block cannot be taken for it), ahead of the peer's queued requests, within the same deadline.
   */
  private continueExchange(exchange: Exchange, request: OutgoingRequest): void {
    const { state } = exchange;
    this.stopRetransmitting(exchange);
    exchange.token = this.allocateToken(state);
    exchange.request = request;
    exchange.messageId = -1;
    exchange.retransmissions = 0;
    if (exchange.holdsSlot) {
      exchange.holdsSlot = false;
      state.outstanding--;
    }
    state.queue.unshift(exchange);
    this.pump(state);
  }

  /** The options of the GETs that fetch a notification's remaining blocks, shared between observations alike. */
  private followUpOptions(options: readonly CoapOption[]): readonly CoapOption[] {
    const kept = options.filter((o) => o.number === OptionNumber.URI_PATH || o.number === OptionNumber.ACCEPT);
    const key = kept.map((o) => `${o.number}:${o.value.toString('hex')}`).join(',');
    const shared = this.followUpShapes.get(key);
    if (shared) return shared;
    // Copies of their own, so they do not keep a request's (pooled) buffers alive.
    const copy = kept.map((o) => ({ number: o.number, value: Buffer.from(o.value) }));
    if (this.followUpShapes.size < MAX_FOLLOW_UP_SHAPES) this.followUpShapes.set(key, copy);
    return copy;
  }

  private fail(exchange: Exchange, error: Error): void {
    if (exchange.settled) return;
    exchange.settled = true;
    if (error instanceof CoapTimeoutError) this.stats.timeouts++;
    this.stopRetransmitting(exchange);
    clearTimeout(exchange.deadlineTimer);
    const { state } = exchange;
    const queued = state.queue.indexOf(exchange);
    if (queued >= 0) state.queue.splice(queued, 1);
    exchange.messageId = -1;
    removeEntry(state, exchange);
    // An observation whose first response never came whole is not the caller's: its notifications get RST.
    if (exchange.observed !== undefined) this.removeObservation(state, exchange.observed);
    this.releaseSlot(exchange);
    exchange.reject(error);
  }

  private releaseSlot(exchange: Exchange): void {
    if (!exchange.holdsSlot) {
      this.settle(exchange.state);
      return;
    }
    exchange.holdsSlot = false;
    exchange.state.outstanding--;
    this.pump(exchange.state);
  }

  private send(peer: Peer, datagram: Buffer): void {
    if (this.closed) return;
    this.transport.send(datagram, peer, (error) =>
      this.dropped.warn('CoAP send failed', { peer: peerKey(peer), error: error.message }),
    );
  }

  private sendReset(peer: Peer, messageId: number): void {
    this.stats.resetsSent++;
    this.send(peer, encodeEmpty(MessageType.RST, messageId));
  }

  // ---- state ----

  private peerState(peer: Peer, create: boolean): PeerState | undefined {
    const key = peerKey(peer);
    let state = this.peers.get(key);
    if (!state && create) {
      state = {
        key,
        peer,
        queue: [],
        outstanding: 0,
        nextMessageId: randomInt(MESSAGE_ID_MODULUS) | 0,
        recentIds: new Uint16Array(RECENT_IDS_PER_PEER),
        recentCount: 0,
        entries: [],
        forgotten: false,
        blockSzx: DEFAULT_BLOCK_SZX,
      };
      this.peers.set(key, state);
    }
    return state;
  }

  /**
   * Once a peer has nothing pending: with nothing observed either it needs no state (keeps memory bounded for stray
   * peers); else its arrays are cut to their length, as an array keeps the capacity it grew to (a device's first
   * round of exchanges leaves ~40 slots behind in each).
   */
  private settle(state: PeerState): void {
    if (state.queue.length > 0 || state.outstanding > 0) return;
    if (state.entries.length === 0) {
      if (this.peers.get(state.key) === state) this.peers.delete(state.key);
    } else {
      state.queue = [];
      state.entries = state.entries.slice();
    }
  }

  /** Whole seconds since this endpoint started: a small integer (V8 stores it unboxed in each observation). */
  private elapsedSeconds(): number {
    return ((this.deps.now() - this.startedAt) / 1000) | 0;
  }

  private allocateToken(state: PeerState): number {
    let token: number;
    do token = randomInt(TOKEN_MIN, TOKEN_MAX_EXCLUSIVE) | 0;
    while (findEntry(state, token));
    return token;
  }

  private allocateResponseMessageId(): number {
    this.nextResponseMessageId = (this.nextResponseMessageId + 1) % MESSAGE_ID_MODULUS;
    return this.nextResponseMessageId;
  }

  private tokenMatches(token: Buffer, expected: number): boolean {
    return token.length === TOKEN_LENGTH && token.readInt32BE(0) === expected;
  }

  /** Remembers a request for deduplication; forgets expired ones and, beyond the bound, the oldest. */
  private remember(key: string, entry: RememberedRequest, now: number): void {
    this.rememberedRequests.delete(key);
    this.rememberedRequests.set(key, entry);
    this.forgetExpiredRequests(now);
    if (!this.rememberedSweep && !this.closed) {
      this.rememberedSweep = setInterval(() => this.sweepRememberedRequests(), REMEMBERED_REQUESTS_SWEEP_MS);
      this.rememberedSweep.unref();
    }
  }

  /** Forgets the oldest remembered requests while they are expired or beyond the bound. */
  private forgetExpiredRequests(now: number): void {
    for (const [oldKey, old] of this.rememberedRequests) {
      if (old.expiresAt > now && this.rememberedRequests.size <= MAX_REMEMBERED_REQUESTS) break;
      this.rememberedRequests.delete(oldKey);
    }
  }

  /** The periodic sweep: requests do not linger past their lifetime after a burst; it stops once none is left. */
  private sweepRememberedRequests(): void {
    this.forgetExpiredRequests(this.deps.now());
    if (this.rememberedRequests.size === 0) {
      clearInterval(this.rememberedSweep);
      this.rememberedSweep = undefined;
    }
  }

  private drop(peer: Peer, reason: string): void {
    this.stats.malformed++;
    this.dropped.warn('dropped CoAP message', { peer: peerKey(peer), reason });
  }
}

function hasBlock2(message: CoapMessage): boolean {
  for (const option of message.options) if (option.number === OptionNumber.BLOCK2) return true;
  return false;
}

/** The peer's exchange or observation under `token`. */
function findEntry(state: PeerState, token: number): Exchange | Observation | undefined {
  for (const entry of state.entries) if (entry.token === token) return entry;
  return undefined;
}

function removeEntry(state: PeerState, entry: Exchange | Observation): void {
  const at = state.entries.indexOf(entry);
  if (at >= 0) state.entries.splice(at, 1);
}

/** The peer's sent exchange waiting for the ACK of `messageId` (at most NSTART of them wait). */
function unacknowledged(state: PeerState, messageId: number): Exchange | undefined {
  for (const entry of state.entries) {
    if (!(entry instanceof Observation) && entry.messageId === messageId) return entry;
  }
  return undefined;
}

/** The Observe option of an observe registration (value 0) or cancellation (value 1), RFC 7641 §2. */
export function observeOption(register: boolean): CoapOption {
  return uintOption(OptionNumber.OBSERVE, register ? 0 : 1);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
