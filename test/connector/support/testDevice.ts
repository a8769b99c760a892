/**
 * A scriptable LwM2M client on a raw UDP socket, for connector tests: it registers, answers the server's requests
 * (write-attributes, observe, read, write, execute) from a resource table, and sends notifications with chosen
 * sequence numbers, formats and message types. Every byte it sends can also be chosen by hand (`sendRaw`).
 */
import dgram from 'node:dgram';
import { SavedSession } from '../../../connector/dtls/dtlsAddon';
import {
  CoapMessage,
  CoapOption,
  Code,
  MessageType,
  OptionNumber,
  decodeMessage,
  encodeMessage,
  readStringOptions,
  readUintOption,
  stringOption,
  uintOption,
} from '../../../connector/coap/coapMessage';
import { DtlsDeviceSocket, PskCredentials } from './dtlsDeviceSocket';

export interface ServerAddress {
  host: string;
  port: number;
}

export interface ResourceState {
  payload: Buffer;
  format: number;
}

/**
 * What the device does with a request from the server; undefined falls through to the default behaviour. `options`
 * go on the response besides Observe and Content-Format (Block2, ETag...).
 */
export type RequestOverride = (
  request: CoapMessage,
  path: string,
) => { code: number; payload?: Buffer; options?: CoapOption[] } | 'ignore' | undefined;

export interface ReceivedRequest {
  message: CoapMessage;
  path: string;
  queries: string[];
  at: number;
}

const TEXT = 0;

/** What the client needs of its transport: a UDP socket, or a DTLS session (`DtlsDeviceSocket`). */
export interface DeviceSocket {
  on(event: 'message', listener: (datagram: Buffer) => void): unknown;
  send(datagram: Buffer, port: number, host: string): void;
  address(): { port: number };
  close(callback: () => void): void;
}

export class TestDevice {
  /** Requests received from the server, in arrival order. */
  readonly received: ReceivedRequest[] = [];
  /** Observation tokens by path. */
  readonly observations = new Map<string, Buffer>();
  /** Values served for reads and observe; `text(...)` makes one. */
  readonly resources = new Map<string, ResourceState>();
  override?: RequestOverride;
  /** When true, every request from the server is ignored (an unreachable device). */
  unreachable = false;
  private nextMessageId = Math.floor(Math.random() * 60_000);
  private nextSequence = new Map<string, number>();
  private readonly waiting = new Map<number, (message: CoapMessage) => void>();
  private readonly resets: number[] = [];
  private closed = false;

  private constructor(
    readonly socket: DeviceSocket,
    readonly server: ServerAddress,
  ) {
    socket.on('message', (datagram) => this.receive(datagram));
  }

  /**
   * `address`: the loopback address to send from (127.0.0.0/8, to look like another host; `::1` for IPv6, then
   * `server.host` must be an IPv6 address too).
   */
  static async start(server: ServerAddress, port = 0, address = '127.0.0.1'): Promise<TestDevice> {
    const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
    await new Promise<void>((resolve) => socket.bind(port, address, resolve));
    return new TestDevice(socket, server);
  }

  /** The same client over a DTLS PSK session with `server` (its coaps port); rejects when the handshake fails. */
  static async overDtls(
    server: ServerAddress,
    credentials: PskCredentials,
    options: { resume?: SavedSession; timeoutMs?: number } = {},
  ): Promise<TestDevice> {
    return new TestDevice(await DtlsDeviceSocket.connect(server, credentials, options), server);
  }

  /** The DTLS session, to resume it from another port (a client over DTLS only). */
  dtlsSession(): SavedSession | undefined {
    return this.socket instanceof DtlsDeviceSocket ? this.socket.connection.save() : undefined;
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Message IDs of RSTs the server sent us. */
  get resetIds(): readonly number[] {
    return this.resets;
  }

  setText(path: string, value: string | number): void {
    this.resources.set(path, { payload: Buffer.from(String(value)), format: TEXT });
  }

  /** Sends a CON request and resolves with the server's response (piggybacked). */
  request(code: number, options: CoapOption[], payload = Buffer.alloc(0), timeoutMs = 5000): Promise<CoapMessage> {
    const messageId = this.allocateMessageId();
    const token = Buffer.from([messageId >> 8, messageId & 0xff, 0x5a]);
    const datagram = encodeMessage({ type: MessageType.CON, code, messageId, token, options, payload });
    return this.exchange(messageId, datagram, timeoutMs);
  }

  /** Sends a prepared datagram and resolves with the ACK for `messageId`. */
  exchange(messageId: number, datagram: Buffer, timeoutMs = 5000): Promise<CoapMessage> {
    return new Promise<CoapMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(messageId);
        reject(new Error(`no response to message ${messageId} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(messageId, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      this.sendRaw(datagram);
    });
  }

  sendRaw(datagram: Buffer): void {
    if (!this.closed) this.socket.send(datagram, this.server.port, this.server.host);
  }

  allocateMessageId(): number {
    this.nextMessageId = (this.nextMessageId + 1) % 65536;
    return this.nextMessageId;
  }

  /** POST /rd?ep=..; resolves with the response; `location` is the `/rd/{id}` path on success. */
  async register(
    endpoint: string,
    options: { lifetime?: number; lwm2m?: string; binding?: string; links?: string; extraQueries?: string[] } = {},
  ): Promise<{ response: CoapMessage; location?: string }> {
    const queries = [`ep=${endpoint}`, `lt=${options.lifetime ?? 300}`, `lwm2m=${options.lwm2m ?? '1.1'}`];
    if (options.binding !== undefined) queries.push(`b=${options.binding}`);
    queries.push(...(options.extraQueries ?? []));
    const response = await this.request(
      Code.POST,
      [
        stringOption(OptionNumber.URI_PATH, 'rd'),
        uintOption(OptionNumber.CONTENT_FORMAT, 40),
        ...queries.map((q) => stringOption(OptionNumber.URI_QUERY, q)),
      ],
      Buffer.from(options.links ?? '</1/0>,</3/0>,</5/0>'),
    );
    const location = readStringOptions(response, OptionNumber.LOCATION_PATH);
    return { response, location: location.length > 0 ? `/${location.join('/')}` : undefined };
  }

  update(location: string, queries: string[] = [], links?: string): Promise<CoapMessage> {
    const options = [
      ...location
        .split('/')
        .filter(Boolean)
        .map((s) => stringOption(OptionNumber.URI_PATH, s)),
      ...queries.map((q) => stringOption(OptionNumber.URI_QUERY, q)),
    ];
    if (links !== undefined) options.push(uintOption(OptionNumber.CONTENT_FORMAT, 40));
    return this.request(Code.POST, options, links === undefined ? Buffer.alloc(0) : Buffer.from(links));
  }

  deregister(location: string): Promise<CoapMessage> {
    return this.request(
      Code.DELETE,
      location
        .split('/')
        .filter(Boolean)
        .map((s) => stringOption(OptionNumber.URI_PATH, s)),
    );
  }

  /**
   * Sends a notification for an observed path: the resource's current representation (or `payload`), with the
   * next sequence number (or `sequence`), as NON unless `confirmable`. Returns the datagram (for resending).
   */
  notify(
    path: string,
    options: {
      payload?: Buffer;
      format?: number;
      sequence?: number;
      confirmable?: boolean;
      messageId?: number;
      /** Options besides Observe and Content-Format (Block2, ETag...). */
      extraOptions?: CoapOption[];
    } = {},
  ): Buffer {
    const token = this.observations.get(path);
    if (!token) throw new Error(`${path} is not observed`);
    const sequence = options.sequence ?? this.nextSequence.get(path) ?? 2;
    this.nextSequence.set(path, sequence + 1);
    const resource = this.resources.get(path);
    const payload = options.payload ?? resource?.payload ?? Buffer.alloc(0);
    const format = options.format ?? resource?.format ?? TEXT;
    const datagram = encodeMessage({
      type: options.confirmable ? MessageType.CON : MessageType.NON,
      code: Code.CONTENT,
      messageId: options.messageId ?? this.allocateMessageId(),
      token,
      options: [
        uintOption(OptionNumber.OBSERVE, sequence),
        uintOption(OptionNumber.CONTENT_FORMAT, format),
        ...(options.extraOptions ?? []),
      ],
      payload,
    });
    this.sendRaw(datagram);
    return datagram;
  }

  /** Resolves once the server observes every path in `paths`. */
  async waitForObservations(paths: readonly string[], timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!paths.every((p) => this.observations.has(p))) {
      if (Date.now() > deadline) {
        throw new Error(`not observed within ${timeoutMs} ms: ${paths.filter((p) => !this.observations.has(p))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private receive(datagram: Buffer): void {
    let message: CoapMessage;
    try {
      message = decodeMessage(datagram);
    } catch {
      return;
    }
    if (message.type === MessageType.RST) {
      this.resets.push(message.messageId);
      return;
    }
    if (message.type === MessageType.ACK) {
      this.waiting.get(message.messageId)?.(message);
      this.waiting.delete(message.messageId);
      return;
    }
    if (message.code === Code.EMPTY || message.code >> 5 !== 0) return;
    const path = `/${readStringOptions(message, OptionNumber.URI_PATH).join('/')}`;
    this.received.push({ message, path, queries: readStringOptions(message, OptionNumber.URI_QUERY), at: Date.now() });
    if (this.unreachable) return;
    const answer: ReturnType<RequestOverride> = this.override?.(message, path) ?? this.defaultAnswer(message, path);
    if (answer === 'ignore') return;
    const observe = readUintOption(message, OptionNumber.OBSERVE);
    const options: CoapOption[] = [];
    if (observe === 0 && answer.code === Code.CONTENT) {
      this.observations.set(path, message.token);
      options.push(uintOption(OptionNumber.OBSERVE, 1));
    }
    const resource = this.resources.get(path);
    if (answer.code === Code.CONTENT) options.push(uintOption(OptionNumber.CONTENT_FORMAT, resource?.format ?? TEXT));
    options.push(...(answer.options ?? []));
    this.sendRaw(
      encodeMessage({
        type: MessageType.ACK,
        code: answer.code,
        messageId: message.messageId,
        token: message.token,
        options,
        payload: answer.payload ?? Buffer.alloc(0),
      }),
    );
  }

  private defaultAnswer(message: CoapMessage, path: string): { code: number; payload?: Buffer } {
    const resource = this.resources.get(path);
    if (message.code === Code.GET) {
      return resource ? { code: Code.CONTENT, payload: resource.payload } : { code: Code.NOT_FOUND };
    }
    if (message.code === Code.PUT) {
      if (message.payload.length === 0) return { code: Code.CHANGED }; // write-attributes
      this.resources.set(path, {
        payload: message.payload,
        format: readUintOption(message, OptionNumber.CONTENT_FORMAT) ?? TEXT,
      });
      return { code: Code.CHANGED };
    }
    if (message.code === Code.POST) return { code: Code.CHANGED };
    return { code: Code.METHOD_NOT_ALLOWED };
  }
}
