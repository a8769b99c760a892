/**
 * A DTLS PSK client session shaped like the bits of a UDP socket that `TestDevice` uses, so the same scriptable
 * LwM2M client runs over coaps.
 */
import { DtlsClientConnection, DtlsClientContext } from '../../../connector/dtls/dtlsClient';
import { SavedSession } from '../../../connector/dtls/dtlsAddon';

export interface PskCredentials {
  identity: string;
  key: Buffer;
}

export class DtlsDeviceSocket {
  private readonly listeners: ((datagram: Buffer) => void)[] = [];
  connection!: DtlsClientConnection;

  /** Handshakes with the server; rejects when the handshake fails (a wrong key, an unknown identity). */
  static async connect(
    server: { host: string; port: number },
    credentials: PskCredentials,
    options: { resume?: SavedSession; timeoutMs?: number } = {},
  ): Promise<DtlsDeviceSocket> {
    const socket = new DtlsDeviceSocket();
    socket.connection = await DtlsClientConnection.connect(
      new DtlsClientContext(credentials),
      server.host,
      server.port,
      {
        ...options,
        onMessage: (plaintext) => socket.listeners.forEach((listener) => listener(plaintext)),
      },
    );
    return socket;
  }

  on(event: 'message', listener: (datagram: Buffer) => void): this {
    this.listeners.push(listener);
    return this;
  }

  send(datagram: Buffer): void {
    this.connection.send(datagram);
  }

  address(): { port: number } {
    return { port: this.connection.localPort };
  }

  close(callback: () => void): void {
    this.connection.close();
    callback();
  }
}
