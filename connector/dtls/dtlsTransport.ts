/**
 * CoAP over DTLS (`coaps`, RFC 7252 §9): a `DatagramTransport` over a `DtlsServer`, so a CoAP endpoint sends and
 * receives record plaintexts and knows each peer's PSK identity. Sending to a peer without an established session
 * fails (reported, never thrown): requests to a device go over its own session or not at all.
 *
 * One established session per PSK identity: a new handshake (or resumption) of an identity ends its session at any
 * other address (the device moved, or restarted behind its NAT), so a key cannot pile up sessions from many ports.
 */
import { DatagramTransport, TransportPeer } from '../coap/datagramTransport';
import { DtlsServer, DtlsServerOptions, DtlsServerStats, SessionEndReason } from './dtlsServer';

export interface DtlsTransportOptions extends Omit<DtlsServerOptions, 'onDatagram'> {
  /** A session ended (peer closed it, key changed, replaced, ended by us): its requests fail from now on. */
  onSessionEnd?: (peer: TransportPeer, identity: string | undefined, reason: SessionEndReason, error?: string) => void;
}

export class DtlsTransport implements DatagramTransport {
  private receiver: (datagram: Buffer, peer: TransportPeer) => void = () => undefined;
  /** Identity -> the address of its established session. */
  private readonly sessionOf = new Map<string, TransportPeer>();
  private boundPort = 0;
  readonly server: DtlsServer;

  private constructor(options: DtlsTransportOptions) {
    this.server = new DtlsServer({
      ...options,
      onDatagram: (peer, plaintext) => this.receiver(plaintext, peer),
      onSessionStart: (peer, identity, info) => {
        const previous = this.sessionOf.get(identity);
        this.sessionOf.set(identity, peer);
        if (previous && (previous.address !== peer.address || previous.port !== peer.port)) {
          this.server.endSession(previous);
        }
        options.onSessionStart?.(peer, identity, info);
      },
      onSessionEnd: (peer, identity, reason, error) => {
        const current = identity === undefined ? undefined : this.sessionOf.get(identity);
        if (identity !== undefined && current?.address === peer.address && current.port === peer.port) {
          this.sessionOf.delete(identity);
        }
        options.onSessionEnd?.(peer, identity, reason, error);
      },
    });
  }

  static async bind(address: string, port: number, options: DtlsTransportOptions): Promise<DtlsTransport> {
    const transport = new DtlsTransport(options);
    transport.boundPort = (await transport.server.bind(address, port)).port;
    return transport;
  }

  get port(): number {
    return this.boundPort;
  }

  listen(receive: (datagram: Buffer, peer: TransportPeer) => void): void {
    this.receiver = receive;
  }

  send(datagram: Buffer, peer: TransportPeer, onError: (error: Error) => void): void {
    if (!this.server.send(peer, datagram)) onError(new Error('no established DTLS session with the peer'));
  }

  identityOf(peer: TransportPeer): string | undefined {
    return this.server.identityOf(peer);
  }

  endSession(peer: TransportPeer): void {
    this.server.endSession(peer);
  }

  stats(): DtlsServerStats {
    return this.server.stats();
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
