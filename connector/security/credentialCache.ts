/**
 * The connector's view of device credentials: the records the Functions app writes (shared/deviceCredentials.ts),
 * applied in version order, kept in memory so a DTLS handshake's PSK lookup and a Register's security check cost no
 * store read. It installs each active PSK identity's key into the DTLS server (`PskKeyring`) and tells the connector
 * when a device's credentials were revoked or changed mode.
 *
 * Contracts:
 * - per device, a record applies only if its `version` is newer than the one held (records may arrive twice or out
 *   of order);
 * - a PSK identity claimed by two or more active devices gets no key at all (both handshakes fail) and a warning
 *   naming the devices, until one of them is changed: an identity must name one device;
 * - keys and identities are never logged.
 */
import { CredentialRecord } from '../../shared/deviceCredentials';
import { Logger } from '../logger';
import { DeviceSecurity } from '../registration/provisioningGate';

/** Where PSKs go (the DTLS server): installing a different key ends the identity's sessions. */
export interface PskKeyring {
  setKey(identity: string, key: Buffer): void;
  deleteKey(identity: string): void;
}

interface Held {
  version: number;
  revoked: boolean;
  mode: CredentialRecord['mode'];
  identity?: string;
  key?: Buffer;
}

export interface CredentialChange {
  deviceId: string;
  /** The device may no longer register (revoked), or must register another way (mode or PSK identity changed). */
  endRegistration: boolean;
}

export class CredentialCache {
  private readonly byDevice = new Map<string, Held>();
  /** Active PSK identity -> the devices claiming it (normally one). */
  private readonly claims = new Map<string, Set<string>>();

  constructor(
    private readonly options: {
      keyring?: PskKeyring;
      log: Logger;
      onChange?: (change: CredentialChange) => void;
    },
  ) {}

  get size(): number {
    return this.byDevice.size;
  }

  /** The device's security, or undefined when it is not provisioned (no record, or revoked). */
  securityOf(deviceId: string): DeviceSecurity | undefined {
    const held = this.byDevice.get(deviceId);
    if (!held || held.revoked) return undefined;
    return held.mode === 'psk' ? { mode: 'psk', identity: held.identity } : { mode: 'none' };
  }

  /** Applies records (any order, duplicates allowed). Returns how many changed what is held. */
  apply(records: readonly CredentialRecord[]): number {
    let applied = 0;
    const touched = new Set<string>();
    for (const record of records) {
      const before = this.byDevice.get(record.deviceId);
      if (before && before.version >= record.version) continue;
      const held = toHeld(record, this.options.log);
      if (!held) continue;
      applied++;
      if (before?.identity !== undefined) this.unclaim(before.identity, record.deviceId, touched);
      this.byDevice.set(record.deviceId, held);
      if (!held.revoked && held.mode === 'psk' && held.identity !== undefined) {
        this.claim(held.identity, record.deviceId, touched);
      }
      // A new identity ends the registration too: the old identity owns it, and may be given to another device.
      const endRegistration =
        before !== undefined &&
        !before.revoked &&
        (held.revoked || held.mode !== before.mode || held.identity !== before.identity);
      if (before) this.options.onChange?.({ deviceId: record.deviceId, endRegistration });
    }
    for (const identity of touched) this.install(identity);
    return applied;
  }

  private claim(identity: string, deviceId: string, touched: Set<string>): void {
    let devices = this.claims.get(identity);
    if (!devices) this.claims.set(identity, (devices = new Set()));
    devices.add(deviceId);
    touched.add(identity);
  }

  private unclaim(identity: string, deviceId: string, touched: Set<string>): void {
    const devices = this.claims.get(identity);
    if (!devices?.delete(deviceId)) return;
    if (devices.size === 0) this.claims.delete(identity);
    touched.add(identity);
  }

  /** Puts the identity's key in the keyring, or takes it out when nobody or several devices claim it. */
  private install(identity: string): void {
    const keyring = this.options.keyring;
    const devices = this.claims.get(identity);
    if (!devices || devices.size === 0) {
      keyring?.deleteKey(identity);
      return;
    }
    if (devices.size > 1) {
      keyring?.deleteKey(identity);
      this.options.log.warn('one PSK identity is provisioned for several devices; none of them can connect', {
        deviceIds: [...devices],
      });
      return;
    }
    const key = this.byDevice.get([...devices][0])?.key;
    if (key) keyring?.setKey(identity, key);
  }
}

function toHeld(record: CredentialRecord, log: Logger): Held | undefined {
  if (record.revoked) return { version: record.version, revoked: true, mode: record.mode };
  if (record.mode === 'none') return { version: record.version, revoked: false, mode: 'none' };
  const key = record.key === undefined ? undefined : Buffer.from(record.key, 'base64');
  if (!record.identity || !key || key.length === 0) {
    log.warn('credential record without identity or key ignored', { deviceId: record.deviceId });
    return undefined;
  }
  return { version: record.version, revoked: false, mode: 'psk', identity: record.identity, key };
}
