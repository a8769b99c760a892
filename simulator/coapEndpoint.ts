/**
 * One simulated device's CoAP endpoint: a UDP socket of its own, from which it sends its requests
 * (registration) and notifications and on which it serves the server's requests, as a real device does.
 *
 * This is a small RFC 7252 message layer over `dgram`, with the `coap` package's wire codec (`coap-packet`)
 * and timing `parameters`. The `coap` package's `Server` and `Agent` can share one socket (`new Agent({ socket
 * })` and `server.listen(socket)`), but its observe path does not fit a client that must decide per
 * notification: every notification takes the type of the observe request (all CON), a NON observe request
 * gets ACK-flagged notifications, a RST to a NON notification is not matched (the observation lives on),
 * and each sent message gets its own retry object with a 202-247 s timer, which at 15,000 notifications
 * per second is millions of live timers. Unreachability must also drop datagrams both ways, which the
 * `Server`'s `instanceof dgram.Socket` checks keep a wrapper from doing.
 *
 * The messages travel over a DeviceTransport (deviceTransport.ts): a plain UDP socket, or a DTLS PSK session on one
 * (dtlsTransport.ts) when the device has credentials.
 *
 * What it provides: piggybacked responses with deduplication of retransmitted requests (EXCHANGE_LIFETIME),
 * confirmable requests with retransmission and exponential back-off, separate responses, notifications as CON
 * or NON with RST/ACK/timeout matching (RFC 7641 §4.5), a reply RST to CoAP ping, and an "unreachable"
 * switch that drops every datagram in both directions.
 */
import { randomBytes } from 'crypto';
import { generate, parse, ParsedPacket } from 'coap-packet';
import { DeviceTransport, PskCredentials, RemoteAddress, UdpDeviceTransport } from './deviceTransport';
import { DtlsDeviceTransport } from './dtlsTransport';
import {
  ackRandomFactor,
  ackTimeoutMs,
  exchangeLifetimeMs,
  MAX_MESSAGE_SIZE,
  MAX_OPTION_NUMBER,
  maxRetransmit,
  maxTransmitWaitMs,
  ResponseCode,
} from './protocol';
import { Scheduler, ScheduledTask } from './scheduler';

export type { RemoteAddress };

export interface IncomingRequest {
  /** Method code, `0.01` GET ... `0.04` DELETE (or any other request code as received). */
  readonly code: string;
  readonly confirmable: boolean;
  readonly token: Buffer;
  readonly uriPath: readonly string[];
  readonly uriQuery: readonly string[];
  readonly contentFormat?: number;
  readonly accept?: number;
  /** The Observe option's value, when present. */
  readonly observe?: number;
  /** The Block2 option's raw value, when present (see blockwise.ts). */
  readonly block2?: Buffer;
  readonly payload: Buffer;
  readonly remote: RemoteAddress;
  /** Why the request cannot be served as it is (critical option not understood...), with the code to answer. */
  readonly rejection?: { code: string; reason: string };
}

export interface OutgoingResponse {
  readonly code: string;
  readonly contentFormat?: number;
  readonly observe?: number;
  /** For errors: a diagnostic payload (RFC 7252 §5.5.2), plain text. */
  readonly payload?: Buffer;
  /** Runs once the response datagram has been handed to the socket (reboot after answering, ...). */
  readonly afterSend?: () => void;
  /** Further options (Block2, ETag: blockwise.ts). */
  readonly extraOptions?: readonly NamedOption[];
}

/** An option by its `coap-packet` name. */
export interface NamedOption {
  readonly name: string;
  readonly value: Buffer;
}

export interface CoapResponse {
  readonly code: string;
  readonly locationPath: readonly string[];
  readonly payload: Buffer;
}

export interface OutgoingRequest {
  readonly code: string;
  readonly uriPath: readonly string[];
  readonly uriQuery?: readonly string[];
  readonly contentFormat?: number;
  readonly payload?: Buffer;
  /** Give up after this many ms even if retransmissions remain (default MAX_TRANSMIT_WAIT). */
  readonly timeoutMs?: number;
  /** Further options (Block1, Size1: blockwise.ts). */
  readonly extraOptions?: readonly NamedOption[];
}

export interface NotificationMessage {
  readonly code: string;
  readonly observe: number;
  readonly contentFormat?: number;
  readonly payload?: Buffer;
  /** Further options (Block2, ETag: blockwise.ts). */
  readonly extraOptions?: readonly NamedOption[];
}

/** The peer sent no acknowledgement or response within the bound. */
export class CoapTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no response within ${ms} ms`);
    this.name = 'CoapTimeoutError';
  }
}

/** The peer answered a confirmable message with RST, or the endpoint closed while waiting. */
export class CoapExchangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoapExchangeError';
  }
}

export interface CoapEndpointCounters {
  datagramsSent: number;
  datagramsReceived: number;
  /** Messages dropped in either direction while unreachable, or sent over DTLS while no session is up. */
  datagramsDropped: number;
  /** Received datagrams that were not CoAP and were dropped. */
  malformedDropped: number;
  retransmissions: number;
  /** Confirmable notifications the peer acknowledged. */
  notificationsAcknowledged: number;
}

export interface CoapEndpointOptions {
  readonly type: 'udp4' | 'udp6';
  /** Local address to bind; the port is chosen by the OS. */
  readonly bindAddress: string;
  /** The LwM2M server; with `security`, the only peer of the endpoint's DTLS session. */
  readonly server: RemoteAddress;
  /** Speak coaps:// with this pre-shared key; absent: plain CoAP. */
  readonly security?: PskCredentials;
  /** Bound on one DTLS handshake, ms (default DTLS_HANDSHAKE_TIMEOUT_MS). */
  readonly dtlsHandshakeTimeoutMs?: number;
  /** DTLS: the server ended the session; no message goes out until `connect`. */
  readonly onSessionEnd?: (reason: string) => void;
  readonly scheduler: Scheduler;
  /** Answers one request; called once per request (retransmissions get the remembered answer). */
  readonly handleRequest: (request: IncomingRequest) => OutgoingResponse;
  /** A notification for `token` was rejected by RST or its CON timed out: the observer is gone. */
  readonly onNotificationRejected: (token: Buffer, reason: 'reset' | 'timeout') => void;
  readonly log: (line: string) => void;
}

/** A confirmable message waiting for its ACK/RST, retransmitted with back-off (RFC 7252 §4.2). */
interface PendingConfirmable {
  messageId: number;
  datagram: Buffer;
  remote: RemoteAddress;
  /** Retransmissions done so far. */
  retransmissions: number;
  /** Current retransmission timeout, ms; doubles per retransmission. */
  timeoutMs: number;
  task?: ScheduledTask;
  onAck(response: ParsedPacket | undefined): void;
  onReset(): void;
  onGiveUp(): void;
}

interface PendingRequest {
  token: string;
  confirmable?: PendingConfirmable;
  deadline: ScheduledTask;
  resolve(response: CoapResponse): void;
  reject(error: Error): void;
}

interface RememberedExchange {
  expiresAtMs: number;
  /** What was answered, resent when the peer retransmits; undefined while none. */
  reply?: Buffer;
}

/** How many recent NON notifications are remembered to match a RST to its observation. */
const RECENT_NON_NOTIFICATIONS = 32;
/** Upper bound on remembered exchanges per endpoint (deduplication memory), oldest forgotten first. */
const MAX_REMEMBERED_EXCHANGES = 512;
/** Token length of the requests this endpoint sends, bytes (RFC 7252 allows 0-8). */
const REQUEST_TOKEN_LENGTH = 4;

const EMPTY = Buffer.alloc(0);
const METHOD_NAMES: Readonly<Record<string, string>> = {
  '0.01': 'GET',
  '0.02': 'POST',
  '0.03': 'PUT',
  '0.04': 'DELETE',
};

export class CoapEndpoint {
  readonly counters: CoapEndpointCounters = {
    datagramsSent: 0,
    datagramsReceived: 0,
    datagramsDropped: 0,
    malformedDropped: 0,
    retransmissions: 0,
    notificationsAcknowledged: 0,
  };

  private nextMessageIdValue = Math.floor(Math.random() * 0x10000);
  private readonly confirmablesByMessageId = new Map<number, PendingConfirmable>();
  private readonly notificationConfirmables = new Map<string, PendingConfirmable>();
  private readonly requestsByToken = new Map<string, PendingRequest>();
  private readonly remembered = new Map<string, RememberedExchange>();
  private readonly recentNonIds = new Int32Array(RECENT_NON_NOTIFICATIONS).fill(-1);
  private readonly recentNonTokens: Buffer[] = new Array<Buffer>(RECENT_NON_NOTIFICATIONS).fill(EMPTY);
  private recentNonNext = 0;
  private closed = false;
  private unreachableValue = false;
  private transport!: DeviceTransport;

  private constructor(private readonly options: CoapEndpointOptions) {}

  /** Binds a new socket on an OS-chosen port (no DTLS handshake yet: see `connect`). */
  static async open(options: CoapEndpointOptions): Promise<CoapEndpoint> {
    const endpoint = new CoapEndpoint(options);
    const transportOptions = {
      type: options.type,
      bindAddress: options.bindAddress,
      server: options.server,
      receive: (message: Buffer, remote: RemoteAddress) => endpoint.receive(message, remote),
      onSessionEnd: (reason: string) => options.onSessionEnd?.(reason),
      log: options.log,
    };
    endpoint.transport = options.security
      ? await DtlsDeviceTransport.open({
          ...transportOptions,
          security: options.security,
          handshakeTimeoutMs: options.dtlsHandshakeTimeoutMs,
        })
      : await UdpDeviceTransport.open(transportOptions);
    return endpoint;
  }

  /** The local UDP port. */
  get port(): number {
    return this.transport.port;
  }

  /** While true, every message in either direction is dropped (counted in `datagramsDropped`), DTLS handshakes too. */
  get unreachable(): boolean {
    return this.unreachableValue;
  }

  set unreachable(unreachable: boolean) {
    this.unreachableValue = unreachable;
    this.transport.unreachable = unreachable;
  }

  /**
   * Readies the path to the server before a request: a DTLS handshake unless a session is up (`fresh`: always a new
   * one); nothing for plain CoAP. Rejects with the handshake's failure.
   */
  connect(options: { fresh?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.reject(new CoapExchangeError('endpoint closed'));
    return this.transport.connect(options);
  }

  /**
   * Sends a confirmable request and resolves with the (piggybacked or separate) response. Rejects with
   * `CoapTimeoutError` when retransmissions run out or `timeoutMs` passes, `CoapExchangeError` on RST or close.
   */
  request(remote: RemoteAddress, request: OutgoingRequest): Promise<CoapResponse> {
    if (this.closed) return Promise.reject(new CoapExchangeError('endpoint closed'));
    const scheduler = this.options.scheduler;
    const token = randomBytes(REQUEST_TOKEN_LENGTH);
    const tokenKey = token.toString('hex');
    const messageId = this.nextMessageId();
    const options = [
      ...request.uriPath.map((segment) => ({ name: 'Uri-Path', value: Buffer.from(segment) })),
      ...(request.contentFormat === undefined
        ? []
        : [{ name: 'Content-Format', value: encodeUint(request.contentFormat) }]),
      ...(request.uriQuery ?? []).map((query) => ({ name: 'Uri-Query', value: Buffer.from(query) })),
      ...(request.extraOptions ?? []),
    ];
    const datagram = generate(
      { code: request.code, confirmable: true, messageId, token, options, payload: request.payload ?? EMPTY },
      MAX_MESSAGE_SIZE,
    );
    const timeoutMs = request.timeoutMs ?? maxTransmitWaitMs();
    const what = `${METHOD_NAMES[request.code] ?? request.code} /${request.uriPath.join('/')}`;
    return new Promise<CoapResponse>((resolve, reject) => {
      const pending: PendingRequest = {
        token: tokenKey,
        deadline: scheduler.after(timeoutMs, () => finish(new CoapTimeoutError(what, timeoutMs))),
        resolve: (response) => finish(undefined, response),
        reject: (error) => finish(error),
      };
      const finish = (error: Error | undefined, response?: CoapResponse) => {
        if (!this.requestsByToken.has(tokenKey)) return;
        this.requestsByToken.delete(tokenKey);
        scheduler.cancel(pending.deadline);
        if (pending.confirmable) this.forgetConfirmable(pending.confirmable);
        if (error) reject(error);
        else resolve(response as CoapResponse);
      };
      this.requestsByToken.set(tokenKey, pending);
      pending.confirmable = this.sendConfirmable(messageId, datagram, remote, {
        onAck: (packet) => {
          pending.confirmable = undefined;
          // An empty ACK means a separate response follows; the deadline still bounds the wait.
          if (packet && packet.token.equals(token)) pending.resolve(toResponse(packet));
        },
        onReset: () => pending.reject(new CoapExchangeError(`${what}: the server answered with RST`)),
        onGiveUp: () => pending.reject(new CoapTimeoutError(what, timeoutMs)),
      });
    });
  }

  /**
   * Sends one notification. A CON one is retransmitted until ACKed; a newer notification for the same token
   * takes over an outstanding CON's retransmission state instead of adding a second one (RFC 7641 §4.5.2).
   */
  notify(remote: RemoteAddress, token: Buffer, message: NotificationMessage, confirmable: boolean): void {
    if (this.closed) return;
    const messageId = this.nextMessageId();
    const options = [{ name: 'Observe', value: encodeUint(message.observe) }];
    if (message.contentFormat !== undefined) {
      options.push({ name: 'Content-Format', value: encodeUint(message.contentFormat) });
    }
    options.push(...(message.extraOptions ?? []));
    const tokenKey = token.toString('hex');
    const outstanding = this.notificationConfirmables.get(tokenKey);
    if (!confirmable && !outstanding) {
      const datagram = generate(
        { code: message.code, confirmable: false, messageId, token, options, payload: message.payload ?? EMPTY },
        MAX_MESSAGE_SIZE,
      );
      this.recentNonIds[this.recentNonNext] = messageId;
      this.recentNonTokens[this.recentNonNext] = token;
      this.recentNonNext = (this.recentNonNext + 1) % RECENT_NON_NOTIFICATIONS;
      this.send(datagram, remote);
      return;
    }
    const datagram = generate(
      { code: message.code, confirmable: true, messageId, token, options, payload: message.payload ?? EMPTY },
      MAX_MESSAGE_SIZE,
    );
    if (outstanding) this.forgetConfirmable(outstanding);
    const pending = this.sendConfirmable(
      messageId,
      datagram,
      remote,
      {
        onAck: () => {
          this.counters.notificationsAcknowledged++;
          this.notificationConfirmables.delete(tokenKey);
        },
        onReset: () => {
          this.notificationConfirmables.delete(tokenKey);
          this.options.onNotificationRejected(token, 'reset');
        },
        onGiveUp: () => {
          this.notificationConfirmables.delete(tokenKey);
          this.options.onNotificationRejected(token, 'timeout');
        },
      },
      outstanding,
    );
    this.notificationConfirmables.set(tokenKey, pending);
  }

  /** Stops retransmitting any CON notification of `token` (the observation was cancelled). */
  forgetNotifications(token: Buffer): void {
    const tokenKey = token.toString('hex');
    const outstanding = this.notificationConfirmables.get(tokenKey);
    if (outstanding) {
      this.forgetConfirmable(outstanding);
      this.notificationConfirmables.delete(tokenKey);
    }
  }

  /** Closes the socket; pending requests reject with `CoapExchangeError`. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const pending of [...this.requestsByToken.values()]) pending.reject(new CoapExchangeError('endpoint closed'));
    for (const pending of this.confirmablesByMessageId.values()) this.options.scheduler.cancel(pending.task);
    this.confirmablesByMessageId.clear();
    this.notificationConfirmables.clear();
    this.remembered.clear();
    return this.transport.close();
  }

  private nextMessageId(): number {
    this.nextMessageIdValue = (this.nextMessageIdValue + 1) & 0xffff;
    return this.nextMessageIdValue;
  }

  private send(datagram: Buffer, remote: RemoteAddress): void {
    if (this.closed) return;
    if (this.unreachable || !this.transport.send(datagram, remote)) {
      this.counters.datagramsDropped++;
      return;
    }
    this.counters.datagramsSent++;
  }

  private sendConfirmable(
    messageId: number,
    datagram: Buffer,
    remote: RemoteAddress,
    handlers: Pick<PendingConfirmable, 'onAck' | 'onReset' | 'onGiveUp'>,
    continuing?: PendingConfirmable,
  ): PendingConfirmable {
    const initialTimeoutMs = ackTimeoutMs() * (1 + Math.random() * (ackRandomFactor() - 1));
    const pending: PendingConfirmable = {
      messageId,
      datagram,
      remote,
      retransmissions: continuing?.retransmissions ?? 0,
      timeoutMs: continuing?.timeoutMs ?? initialTimeoutMs,
      ...handlers,
    };
    this.confirmablesByMessageId.set(messageId, pending);
    const retransmit = () => {
      if (pending.retransmissions >= maxRetransmit()) {
        this.forgetConfirmable(pending);
        pending.onGiveUp();
        return;
      }
      pending.retransmissions++;
      pending.timeoutMs *= 2;
      this.counters.retransmissions++;
      this.send(pending.datagram, pending.remote);
      pending.task = this.options.scheduler.after(pending.timeoutMs, retransmit);
    };
    this.send(datagram, remote);
    pending.task = this.options.scheduler.after(pending.timeoutMs, retransmit);
    return pending;
  }

  private forgetConfirmable(pending: PendingConfirmable): void {
    this.options.scheduler.cancel(pending.task);
    if (this.confirmablesByMessageId.get(pending.messageId) === pending) {
      this.confirmablesByMessageId.delete(pending.messageId);
    }
  }

  private receive(datagram: Buffer, remote: RemoteAddress): void {
    if (this.closed) return;
    if (this.unreachable) {
      this.counters.datagramsDropped++;
      return;
    }
    this.counters.datagramsReceived++;
    let packet: ParsedPacket;
    try {
      packet = parseStrictly(datagram);
    } catch (error) {
      this.counters.malformedDropped++;
      this.options.log(
        `dropped a malformed datagram of ${datagram.length} bytes from ${remote.address}:${remote.port}: ${message(error)}`,
      );
      return;
    }
    try {
      if (packet.code === '0.00') this.receiveEmpty(packet, remote);
      else if (packet.code.startsWith('0.')) this.receiveRequest(packet, remote);
      else this.receiveResponse(packet, remote);
    } catch (error) {
      this.options.log(`failed to handle a datagram from ${remote.address}:${remote.port}: ${message(error)}`);
    }
  }

  private receiveEmpty(packet: ParsedPacket, remote: RemoteAddress): void {
    if (packet.confirmable) {
      // CoAP ping (RFC 7252 §4.3): answered with RST.
      this.send(generate({ code: '0.00', reset: true, messageId: packet.messageId }), remote);
      return;
    }
    const pending = this.confirmablesByMessageId.get(packet.messageId);
    if (pending) {
      this.forgetConfirmable(pending);
      if (packet.reset) pending.onReset();
      else if (packet.ack) pending.onAck(undefined);
      return;
    }
    if (packet.reset) {
      const slot = this.recentNonIds.indexOf(packet.messageId);
      if (slot >= 0) {
        this.recentNonIds[slot] = -1;
        this.options.onNotificationRejected(this.recentNonTokens[slot], 'reset');
      }
    }
  }

  private receiveRequest(packet: ParsedPacket, remote: RemoteAddress): void {
    const exchangeKey = `${remote.address}|${remote.port}|${packet.messageId}`;
    const seen = this.remembered.get(exchangeKey);
    if (seen) {
      if (seen.reply) this.send(seen.reply, remote);
      return;
    }
    const exchange = this.remember(exchangeKey);
    const request = toIncomingRequest(packet, remote);
    let response: OutgoingResponse;
    try {
      response = request.rejection
        ? { code: request.rejection.code, payload: Buffer.from(request.rejection.reason) }
        : this.options.handleRequest(request);
    } catch (error) {
      this.options.log(`request ${request.code} /${request.uriPath.join('/')} failed: ${message(error)}`);
      response = { code: ResponseCode.INTERNAL_SERVER_ERROR, payload: Buffer.from('internal error') };
    }
    const options: { name: string; value: Buffer }[] = [];
    if (response.observe !== undefined) options.push({ name: 'Observe', value: encodeUint(response.observe) });
    if (response.contentFormat !== undefined) {
      options.push({ name: 'Content-Format', value: encodeUint(response.contentFormat) });
    }
    options.push(...(response.extraOptions ?? []));
    const header = {
      ack: packet.confirmable,
      confirmable: false,
      messageId: packet.confirmable ? packet.messageId : this.nextMessageId(),
      token: packet.token,
    };
    let reply: Buffer;
    try {
      reply = generate(
        { ...header, code: response.code, options, payload: response.payload ?? EMPTY },
        MAX_MESSAGE_SIZE,
      );
    } catch (error) {
      this.options.log(`response to ${request.code} /${request.uriPath.join('/')} not sendable: ${message(error)}`);
      reply = generate({
        ...header,
        code: ResponseCode.INTERNAL_SERVER_ERROR,
        payload: Buffer.from('response too large'),
      });
    }
    exchange.reply = reply;
    this.send(reply, remote);
    response.afterSend?.();
  }

  private receiveResponse(packet: ParsedPacket, remote: RemoteAddress): void {
    if (packet.ack) {
      const pending = this.confirmablesByMessageId.get(packet.messageId);
      if (pending) {
        this.forgetConfirmable(pending);
        pending.onAck(packet);
      }
      return;
    }
    // A separate response (RFC 7252 §5.2.2): acknowledge it if confirmable, once per Message ID.
    const exchangeKey = `${remote.address}|${remote.port}|${packet.messageId}`;
    const seen = this.remembered.get(exchangeKey);
    if (seen) {
      if (seen.reply) this.send(seen.reply, remote);
      return;
    }
    const pending = this.requestsByToken.get(packet.token.toString('hex'));
    if (packet.confirmable) {
      const reply = generate({ code: '0.00', messageId: packet.messageId, ack: !!pending, reset: !pending });
      this.remember(exchangeKey).reply = reply;
      this.send(reply, remote);
    }
    pending?.resolve(toResponse(packet));
  }

  private remember(key: string): RememberedExchange {
    const now = this.options.scheduler.now();
    for (const [oldKey, old] of this.remembered) {
      if (old.expiresAtMs > now && this.remembered.size < MAX_REMEMBERED_EXCHANGES) break;
      this.remembered.delete(oldKey);
    }
    const exchange: RememberedExchange = { expiresAtMs: now + exchangeLifetimeMs() };
    this.remembered.set(key, exchange);
    return exchange;
  }
}

/**
 * Critical options (odd numbers, RFC 7252 §5.4.1) that the codec knows by name but this endpoint does not
 * implement: a request carrying one gets 4.02. Other known options (If-Match, Uri-Host, ETag, Block2, ...) are
 * accepted and ignored; unknown critical ones get 4.02 too.
 */
const UNSUPPORTED_CRITICAL_OPTIONS = new Set([
  'OSCORE',
  'Q-Block1',
  'Q-Block2',
  'OCF-Accept-Content-Format-Version',
  'OCF-Content-Format-Version',
]);

/**
 * `coap-packet`'s parse, plus the format error it lets through: option deltas summing past 65535 (RFC 7252 §3.1).
 * The codec names options it does not know by their number, as a string, and every registered option is below that.
 */
function parseStrictly(datagram: Buffer): ParsedPacket {
  const packet = parse(datagram);
  for (const option of packet.options) {
    const name = String(option.name);
    if (/^\d+$/.test(name) && Number(name) > MAX_OPTION_NUMBER) {
      throw new Error(`option number ${name} is past ${MAX_OPTION_NUMBER}`);
    }
  }
  return packet;
}

function toIncomingRequest(packet: ParsedPacket, remote: RemoteAddress): IncomingRequest {
  const uriPath: string[] = [];
  const uriQuery: string[] = [];
  let contentFormat: number | undefined;
  let accept: number | undefined;
  let observe: number | undefined;
  let block2: Buffer | undefined;
  let rejection: IncomingRequest['rejection'];
  const reject = (code: string, reason: string) => {
    rejection ??= { code, reason };
  };
  for (const option of packet.options) {
    switch (option.name) {
      case 'Uri-Path':
        uriPath.push(option.value.toString('utf8'));
        break;
      case 'Uri-Query':
        uriQuery.push(option.value.toString('utf8'));
        break;
      case 'Content-Format':
        contentFormat = decodeUint(option.value);
        if (contentFormat === undefined) reject(ResponseCode.BAD_OPTION, 'Content-Format longer than 2 bytes');
        break;
      case 'Accept':
        accept = decodeUint(option.value);
        if (accept === undefined) reject(ResponseCode.BAD_OPTION, 'Accept longer than 2 bytes');
        break;
      case 'Observe':
        observe = decodeUint(option.value);
        if (observe === undefined) reject(ResponseCode.BAD_OPTION, 'Observe longer than 3 bytes');
        break;
      case 'Block2':
        block2 = option.value;
        break;
      case 'Block1':
        reject(ResponseCode.REQUEST_ENTITY_TOO_LARGE, 'block-wise transfer (Block1) is not supported');
        break;
      case 'Proxy-Uri':
      case 'Proxy-Scheme':
        reject(ResponseCode.PROXYING_NOT_SUPPORTED, 'proxying is not supported');
        break;
      default: {
        // The codec names options it does not know by their number, as a string.
        const unknownNumber = /^\d+$/.test(String(option.name)) ? Number(option.name) : undefined;
        if (
          (unknownNumber !== undefined && unknownNumber % 2 === 1) ||
          UNSUPPORTED_CRITICAL_OPTIONS.has(String(option.name))
        ) {
          reject(ResponseCode.BAD_OPTION, `critical option ${option.name} is not supported`);
        }
      }
    }
  }
  return {
    code: packet.code,
    confirmable: packet.confirmable,
    token: packet.token,
    uriPath: uriPath.length === 1 && uriPath[0] === '' ? [] : uriPath,
    uriQuery,
    contentFormat,
    accept,
    observe,
    block2,
    payload: packet.payload,
    remote,
    rejection,
  };
}

function toResponse(packet: ParsedPacket): CoapResponse {
  return {
    code: packet.code,
    locationPath: packet.options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString('utf8')),
    payload: packet.payload,
  };
}

/** Minimal big-endian unsigned encoding of a CoAP uint option (RFC 7252 §3.2): 0 is the empty value. */
export function encodeUint(value: number): Buffer {
  if (value === 0) return EMPTY;
  const length = value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x1000000 ? 3 : 4;
  const buffer = Buffer.alloc(length);
  buffer.writeUIntBE(value, 0, length);
  return buffer;
}

/** Decodes a CoAP uint option of at most 4 bytes; undefined when longer. */
export function decodeUint(value: Buffer): number | undefined {
  if (value.length === 0) return 0;
  if (value.length > 4) return undefined;
  return value.readUIntBE(0, value.length);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
