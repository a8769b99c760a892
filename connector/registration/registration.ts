/**
 * A device's registration (LwM2M Core §6.2): data only, no socket, so it can be stored, restored by a restarted
 * connector, and compared. The `transport` names the connector endpoint the device registered through; requests to
 * the device leave from there (a NAT binding is per socket).
 */
import { ObjectLink } from '../lwm2m/linkFormat';

/** Where a device's messages come from and requests to it go. */
export interface DeviceAddress {
  readonly address: string;
  readonly port: number;
}

/** The connector endpoint a registration arrived on: plain CoAP (5683) or CoAP over DTLS with a PSK (5684). */
export type TransportName = 'coap' | 'coaps';

export interface Registration {
  /** The `/rd/{id}` location handed to the client: 8 random bytes, base64url. */
  readonly id: string;
  /** The endpoint client name (`ep`), which is the deviceId. */
  readonly endpoint: string;
  readonly transport: TransportName;
  /** `coaps`: the PSK identity of the DTLS session that registered; only a session with it may Update or De-register. */
  readonly identity?: string;
  address: DeviceAddress;
  /** Seconds. */
  lifetime: number;
  binding: string;
  readonly lwm2mVersion: string;
  /** Alternate root path ('' for `/`). */
  rootPath: string;
  objects: ObjectLink[];
  /**
   * The content formats the device announced with `ct=` on its root link, in its order (absent: none announced);
   * `acceptFor` picks the Accept option of reads and observes from them and `lwm2mVersion`.
   */
  contentFormats?: number[];
  /**
   * The instance of the LwM2M Server object (1) that describes this server on the device (`/1/x`): the catalog's
   * `/1/0/...` properties are read and observed there. Absent until known: then `/1/0`.
   */
  serverInstanceId?: number;
  /** ms since the epoch. */
  readonly registeredAt: number;
  /** Last Register or Update, ms. */
  updatedAt: number;
  /** updatedAt + lifetime, ms. */
  expiresAt: number;
  /** The connector instance holding it (`Connector__instanceId`). */
  readonly connectorId: string;
  /**
   * Established observations: property name -> token (a 32-bit random integer, the 4-byte CoAP token). Stored with
   * the registration, so a restarted connector recognises the device's notifications.
   */
  observations: Record<string, number>;
}

/** `address#port`. Built by `join`, which makes one flat string (a template literal keeps a tree of its pieces). */
export function addressKey(address: DeviceAddress): string {
  return [address.address, address.port].join('#');
}

/**
 * Whether requests to the registration's address reach its own device: always over plain CoAP; over DTLS only while
 * the session at that address is one of the PSK identity that registered (after a connector restart, or when another
 * device took over the address, there is none until the device handshakes again).
 */
export function sessionOwnedBy(
  registration: Registration,
  transport: { identityOf(address: DeviceAddress): string | undefined },
): boolean {
  return registration.identity === undefined || transport.identityOf(registration.address) === registration.identity;
}
