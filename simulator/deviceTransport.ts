/**
 * How a simulated device's CoAP messages reach the wire: a UDP socket of its own (coap://), or a DTLS 1.2 PSK
 * session on one (coaps://, dtlsTransport.ts). The CoAP layer (coapEndpoint.ts) sends and receives whole CoAP
 * messages and never sees a record or a handshake.
 */
import dgram from 'dgram';

export interface RemoteAddress {
  readonly address: string;
  readonly port: number;
}

/** A device's DTLS pre-shared key: the identity it proves and the 16-64 key bytes. */
export interface PskCredentials {
  readonly identity: string;
  readonly key: Buffer;
}

export interface DeviceTransportOptions {
  readonly type: 'udp4' | 'udp6';
  /** Local address to bind; the port is chosen by the OS. */
  readonly bindAddress: string;
  /** The LwM2M server. A DTLS transport talks to it only and drops datagrams from anyone else. */
  readonly server: RemoteAddress;
  /** Each CoAP message received (after decryption, for DTLS), with its sender. */
  readonly receive: (message: Buffer, remote: RemoteAddress) => void;
  /** DTLS: an established session ended from the server's side (close_notify, fatal alert). */
  readonly onSessionEnd?: (reason: string) => void;
  readonly log: (line: string) => void;
}

export interface DeviceTransport {
  /** The local UDP port. */
  readonly port: number;
  /**
   * While true, DTLS handshake datagrams are dropped in both directions (the CoAP layer drops, and counts, its own
   * messages); nothing for UDP.
   */
  unreachable: boolean;
  /**
   * Makes the path to the server ready to carry a request. UDP: nothing to do. DTLS: a handshake, unless a session
   * is established and `fresh` is not asked (a Register starts a new session, as LwM2M clients do). Rejects with
   * the reason: OpenSSL's alert, or no handshake within the bound (a wrong key shows only as silence).
   */
  connect(options?: { fresh?: boolean }): Promise<void>;
  /** Sends one CoAP message; false when it cannot go (DTLS without an established session). */
  send(message: Buffer, remote: RemoteAddress): boolean;
  /** Ends the session (close_notify) and closes the socket. */
  close(): Promise<void>;
}

/** Binds a UDP socket of `options.type` on `options.bindAddress`, OS-chosen port. */
export function bindSocket(options: Pick<DeviceTransportOptions, 'type' | 'bindAddress'>): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: options.type });
    const onError = (error: Error) => {
      socket.close();
      reject(new Error(`cannot bind a UDP socket on ${options.bindAddress}: ${error.message}`));
    };
    socket.once('error', onError);
    socket.bind(0, options.bindAddress, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/** Plain CoAP over UDP: every datagram is a CoAP message. */
export class UdpDeviceTransport implements DeviceTransport {
  unreachable = false;

  private constructor(private readonly socket: dgram.Socket) {}

  static async open(options: DeviceTransportOptions): Promise<UdpDeviceTransport> {
    const socket = await bindSocket(options);
    const transport = new UdpDeviceTransport(socket);
    socket.on('message', (datagram, rinfo) => options.receive(datagram, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', (error) => options.log(`socket error on port ${transport.portOrZero()}: ${error.message}`));
    return transport;
  }

  get port(): number {
    return this.socket.address().port;
  }

  connect(): Promise<void> {
    return Promise.resolve();
  }

  send(message: Buffer, remote: RemoteAddress): boolean {
    this.socket.send(message, remote.port, remote.address);
    return true;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private portOrZero(): number {
    try {
      return this.socket.address().port;
    } catch {
      return 0;
    }
  }
}
