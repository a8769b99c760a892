/**
 * CoAP over DTLS (`coaps`, RFC 7252 §9): a `DatagramTransport` over a `DtlsServer`, so a CoAP endpoint sends and
 * receives record plaintexts and knows each peer's PSK identity. Sending to a peer without an established session
 * fails (reported, never thrown): requests to a device go over its own session or not at all.
 */
import { DatagramTransport, TransportPeer } from '../coap/datagramTransport';
import { DtlsServer, DtlsServerOptions, DtlsServerStats, SessionEndReason } from './dtlsServer';

export interface DtlsTransportOptions extends Omit<DtlsServerOptions, 'onDatagram'> {
  /** A session ended (peer closed it, key changed, replaced, ended by us): its requests fail from now on. */
  onSessionEnd?: (peer: TransportPeer, identity: string | undefined, reason: SessionEndReason) => void;
}

export class DtlsTransport implements DatagramTransport {
  private receiver: (datagram: Buffer, peer: TransportPeer) => void = () => undefined;
  private boundPort = 0;
  readonly server: DtlsServer;

  private constructor(options: DtlsTransportOptions) {
    this.server = new DtlsServer({
      ...options,
      onDatagram: (peer, plaintext) => this.receiver(plaintext, peer),
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
