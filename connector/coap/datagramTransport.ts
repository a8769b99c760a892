/**
 * What a CoAP endpoint sends and receives datagrams through: a plain UDP socket (`UdpTransport`, CoAP on 5683) or
 * DTLS sessions over one (CoAP over DTLS, `coaps` on 5684), where each datagram is a record's plaintext and the peer
 * has an authenticated identity.
 */
import dgram, { Socket } from 'node:dgram';
import { AddressInfo } from 'node:net';

export interface TransportPeer {
  readonly address: string;
  readonly port: number;
}

export interface DatagramTransport {
  /** The bound UDP port. */
  readonly port: number;
  /** Starts delivering received datagrams (called once, by the endpoint). */
  listen(receive: (datagram: Buffer, peer: TransportPeer) => void): void;
  /** Sends one datagram; a failure is reported to `onError`, never thrown. */
  send(datagram: Buffer, peer: TransportPeer, onError: (error: Error) => void): void;
  /** The identity the peer authenticated with (its DTLS PSK identity), or undefined (plain UDP, no session). */
  identityOf(peer: TransportPeer): string | undefined;
  /** Ends the peer's session, if the transport has sessions (DTLS); frees its memory. */
  endSession(peer: TransportPeer): void;
  close(): Promise<void>;
}

/** Plain CoAP: one UDP socket, IPv6 for an IPv6 address (dual-stack for `::`). */
export class UdpTransport implements DatagramTransport {
  private constructor(private readonly socket: Socket) {}

  static async bind(address: string, port: number, onSocketError: (error: Error) => void): Promise<UdpTransport> {
    const socket = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', onSocketError);
    try {
      // Bursts of notifications from many devices at once; the kernel caps this at net.core.rmem_max.
      socket.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      // Keep the system default.
    }
    return new UdpTransport(socket);
  }

  get port(): number {
    return (this.socket.address() as AddressInfo).port;
  }

  listen(receive: (datagram: Buffer, peer: TransportPeer) => void): void {
    this.socket.on('message', (datagram, remote) => receive(datagram, { address: remote.address, port: remote.port }));
  }

  send(datagram: Buffer, peer: TransportPeer, onError: (error: Error) => void): void {
    try {
      this.socket.send(datagram, peer.port, peer.address, (error) => {
        if (error) onError(error);
      });
    } catch (error) {
      onError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  identityOf(): undefined {
    return undefined;
  }

  endSession(): void {
    // Plain UDP has no sessions.
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }
}
