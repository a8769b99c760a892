/**
 * A tiny LwM2M server written for the simulator's tests: a raw UDP socket on 127.0.0.1 and the CoAP wire
 * codec, nothing of the simulator. It answers the registration interface (scriptable), sends requests to a
 * device, and records everything it receives, including notifications (ACKed when confirmable, or RST).
 */
import { randomBytes } from 'crypto';
import dgram from 'dgram';
import { generate, parse, ParsedPacket } from 'coap-packet';

export interface Received {
  readonly packet: ParsedPacket;
  readonly from: { address: string; port: number };
  readonly atMs: number;
}

export interface Registration {
  readonly id: string;
  readonly query: Record<string, string>;
  readonly body: string;
  readonly contentFormat?: number;
  readonly from: { address: string; port: number };
}

export interface StandInRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  path: string;
  query?: string[];
  accept?: number;
  contentFormat?: number;
  payload?: Buffer | string;
  observe?: number;
  confirmable?: boolean;
  token?: Buffer;
}

export interface StandInResponse {
  code: string;
  payload: string;
  raw: Buffer;
  contentFormat?: number;
  observe?: number;
  token: Buffer;
  packet: ParsedPacket;
}

type RegistrationReply = (request: ParsedPacket, kind: 'register' | 'update' | 'deregister') => string | undefined;

export function optionValues(packet: ParsedPacket, name: string): Buffer[] {
  return packet.options.filter((o) => o.name === name).map((o) => o.value);
}

export function uintOption(packet: ParsedPacket, name: string): number | undefined {
  const [value] = optionValues(packet, name);
  if (value === undefined) return undefined;
  return value.length === 0 ? 0 : value.readUIntBE(0, value.length);
}

function encodeUint(value: number): Buffer {
  if (value === 0) return Buffer.alloc(0);
  const length = value < 0x100 ? 1 : value < 0x10000 ? 2 : 3;
  const buffer = Buffer.alloc(length);
  buffer.writeUIntBE(value, 0, length);
  return buffer;
}

export class Lwm2mServerStandIn {
  readonly received: Received[] = [];
  readonly registrations: Registration[] = [];
  readonly updates: { id: string; query: string[]; from: { address: string; port: number } }[] = [];
  readonly deregistrations: string[] = [];
  /** Notifications received (messages with Observe that are not answers to a pending request). */
  readonly notifications: (Received & { observe: number; payload: string; token: string })[] = [];
  /** What to answer a registration message; undefined = the normal answer. */
  reply: RegistrationReply = () => undefined;
  /** ACK confirmable notifications (true) or answer every notification with RST (false). */
  acceptNotifications = true;
  /** While true, answer nothing: registration requests are ignored, notifications recorded but not ACKed. */
  silent = false;
  private readonly live = new Set<string>();
  private readonly pending = new Map<string, (response: StandInResponse) => void>();
  private nextId = 1;
  private messageId = 1000;
  private listeners: (() => void)[] = [];

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (datagram, rinfo) => this.onDatagram(datagram, { address: rinfo.address, port: rinfo.port }));
  }

  static async start(): Promise<Lwm2mServerStandIn> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new Lwm2mServerStandIn(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends raw bytes to a device (fuzzing). */
  sendRaw(port: number, datagram: Buffer): void {
    this.socket.send(datagram, port, '127.0.0.1');
  }

  /** Sends a request to the device on `port` and resolves with its response (rejects after `timeoutMs`). */
  request(port: number, request: StandInRequest, timeoutMs = 5000): Promise<StandInResponse> {
    const token = request.token ?? randomBytes(4);
    const options = [
      ...(request.observe !== undefined ? [{ name: 'Observe', value: encodeUint(request.observe) }] : []),
      ...request.path
        .split('/')
        .filter((s) => s !== '')
        .map((segment) => ({ name: 'Uri-Path', value: Buffer.from(segment) })),
      ...(request.contentFormat !== undefined
        ? [{ name: 'Content-Format', value: encodeUint(request.contentFormat) }]
        : []),
      ...(request.query ?? []).map((q) => ({ name: 'Uri-Query', value: Buffer.from(q) })),
      ...(request.accept !== undefined ? [{ name: 'Accept', value: encodeUint(request.accept) }] : []),
    ];
    const datagram = generate({
      code: request.method,
      confirmable: request.confirmable !== false,
      messageId: this.nextMessageId(),
      token,
      options,
      payload:
        typeof request.payload === 'string' ? Buffer.from(request.payload) : (request.payload ?? Buffer.alloc(0)),
    });
    return new Promise((resolve, reject) => {
      const key = token.toString('hex');
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`stand-in: no response to ${request.method} ${request.path} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(key, (response) => {
        clearTimeout(timer);
        this.pending.delete(key);
        resolve(response);
      });
      this.socket.send(datagram, port, '127.0.0.1');
    });
  }

  /** Sends an empty RST or ACK with a given message id to a device. */
  sendEmpty(port: number, messageId: number, kind: 'reset' | 'ack'): void {
    this.socket.send(generate({ code: '0.00', messageId, [kind]: true }), port, '127.0.0.1');
  }

  /** Resolves once `predicate` holds (checked on every datagram and every 10 ms), or rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        done();
        resolve();
      };
      const poll = setInterval(check, 10);
      const timer = setTimeout(() => {
        done();
        reject(new Error(`stand-in: timed out waiting for ${what}`));
      }, timeoutMs);
      const done = () => {
        clearInterval(poll);
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== check);
      };
      this.listeners.push(check);
    });
  }

  /** Forgets a registration, so its next Update gets 4.04 (a server that lost its state). */
  forget(id: string): void {
    this.live.delete(id);
  }

  close(): Promise<void> {
    for (const key of [...this.pending.keys()]) this.pending.delete(key);
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private nextMessageId(): number {
    this.messageId = (this.messageId + 1) & 0xffff;
    return this.messageId;
  }

  private onDatagram(datagram: Buffer, from: { address: string; port: number }): void {
    const packet = parse(datagram);
    const received: Received = { packet, from, atMs: Date.now() };
    this.received.push(received);
    this.handle(packet, from, received);
    for (const listener of [...this.listeners]) listener();
  }

  private handle(packet: ParsedPacket, from: { address: string; port: number }, received: Received): void {
    const send = (reply: Parameters<typeof generate>[0]) => this.socket.send(generate(reply), from.port, from.address);
    if (packet.code.startsWith('0.') && packet.code !== '0.00') {
      if (this.silent) return;
      const path = optionValues(packet, 'Uri-Path').map((v) => v.toString());
      const query = optionValues(packet, 'Uri-Query').map((v) => v.toString());
      const answer = (code: string, options: { name: string; value: Buffer }[] = []) =>
        send({ code, ack: true, messageId: packet.messageId, token: packet.token, options });
      if (path[0] !== 'rd') return answer('4.04');
      if (packet.code === '0.02' && path.length === 1) {
        const id = `r${this.nextId++}`;
        const scripted = this.reply(packet, 'register');
        if (scripted) return answer(scripted);
        this.registrations.push({
          id,
          query: Object.fromEntries(query.map((q) => q.split('=') as [string, string])),
          body: packet.payload.toString(),
          contentFormat: uintOption(packet, 'Content-Format'),
          from,
        });
        this.live.add(id);
        return answer('2.01', [
          { name: 'Location-Path', value: Buffer.from('rd') },
          { name: 'Location-Path', value: Buffer.from(id) },
        ]);
      }
      const id = path[1];
      if (packet.code === '0.02') {
        const scripted = this.reply(packet, 'update');
        if (scripted) return answer(scripted);
        if (!this.live.has(id)) return answer('4.04');
        this.updates.push({ id, query, from });
        return answer('2.04');
      }
      if (packet.code === '0.04') {
        const scripted = this.reply(packet, 'deregister');
        if (scripted) return answer(scripted);
        this.deregistrations.push(id);
        return answer(this.live.delete(id) ? '2.02' : '4.04');
      }
      return answer('4.05');
    }
    if (packet.code === '0.00') return;
    const key = packet.token.toString('hex');
    const observe = uintOption(packet, 'Observe');
    const resolver = packet.ack ? this.pending.get(key) : undefined;
    if (resolver) {
      resolver({
        code: packet.code,
        payload: packet.payload.toString(),
        raw: packet.payload,
        contentFormat: uintOption(packet, 'Content-Format'),
        observe,
        token: packet.token,
        packet,
      });
      return;
    }
    if (observe !== undefined) {
      this.notifications.push({ ...received, observe, payload: packet.payload.toString(), token: key });
      if (this.silent) return;
      if (!this.acceptNotifications) send({ code: '0.00', reset: true, messageId: packet.messageId });
      else if (packet.confirmable) send({ code: '0.00', ack: true, messageId: packet.messageId });
    }
  }
}
