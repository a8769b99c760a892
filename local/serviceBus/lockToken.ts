/**
 * Lock tokens are GUID strings. On a receive link the token travels as the 16-byte delivery tag in .NET
 * `Guid.ToByteArray()` order (first three groups little-endian), which the SDK reorders before printing; in
 * management requests and responses it travels as an AMQP uuid in plain (RFC 4122) byte order.
 */
import { randomUUID } from 'node:crypto';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function newLockToken(): string {
  return randomUUID();
}

/** The 16 bytes of a GUID in RFC 4122 order (an AMQP uuid). */
export function uuidBytesOf(lockToken: string): Buffer {
  if (!GUID.test(lockToken)) throw new Error(`'${lockToken}' is not a lock token (GUID)`);
  return Buffer.from(lockToken.replace(/-/g, ''), 'hex');
}

/** The GUID string of 16 bytes in RFC 4122 order. */
export function lockTokenOfUuidBytes(bytes: Buffer): string {
  if (bytes.length !== 16) throw new Error(`a lock token has 16 bytes, got ${bytes.length}`);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Swaps between RFC 4122 and .NET byte order (the swap is its own inverse). */
function swapDotNetGuidOrder(bytes: Buffer): Buffer {
  const swapped = Buffer.from(bytes);
  swapped.writeUInt32LE(bytes.readUInt32BE(0), 0);
  swapped.writeUInt16LE(bytes.readUInt16BE(4), 4);
  swapped.writeUInt16LE(bytes.readUInt16BE(6), 6);
  return swapped;
}

/** The delivery tag that carries a lock token on a receive link. */
export function deliveryTagOf(lockToken: string): Buffer {
  return swapDotNetGuidOrder(uuidBytesOf(lockToken));
}

/** The lock token carried by a delivery tag. */
export function lockTokenOfDeliveryTag(tag: Buffer): string {
  return lockTokenOfUuidBytes(swapDotNetGuidOrder(tag));
}
