/**
 * The simulator's PSK file: each simulated device's DTLS identity and key, by endpoint name. Keys travel in a file
 * (mode 0600), never on the command line, where `ps` would show them to every user of the machine.
 *
 *   { "sim-001": { "identity": "sim-001", "key": "q83vASNFZ4mrze8BI0VniQ==" }, ... }
 *
 * `key` is hex or base64 of 16-64 bytes, as `PUT /api/devices/{id}` takes it and its 201 body returns it.
 */
import { readFileSync } from 'fs';
import { decodeKey, MAX_PSK_IDENTITY_LENGTH } from '../shared/deviceCredentials';
import { PskCredentials } from './deviceTransport';

/** Reads and checks a PSK file; throws an Error naming the file and the entry at fault (never a key). */
export function readPskFile(path: string): Map<string, PskCredentials> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the PSK file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`the PSK file ${path} is not JSON`);
  }
  return parsePskEntries(parsed, path);
}

/** The entries of a parsed PSK file (`source` names it in errors). */
export function parsePskEntries(parsed: unknown, source: string): Map<string, PskCredentials> {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`the PSK file ${source} must hold an object: { "<endpoint>": { "identity": ..., "key": ... } }`);
  }
  const entries = new Map<string, PskCredentials>();
  for (const [endpoint, entry] of Object.entries(parsed)) {
    const { identity, key } = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    if (typeof identity !== 'string' || identity.length > MAX_PSK_IDENTITY_LENGTH || !/^[\x20-\x7e]+$/.test(identity)) {
      throw new Error(
        `the PSK file ${source}: ${endpoint}.identity must be 1-${MAX_PSK_IDENTITY_LENGTH} printable ASCII`,
      );
    }
    const bytes = typeof key === 'string' ? decodeKey(key) : undefined;
    if (!bytes) throw new Error(`the PSK file ${source}: ${endpoint}.key must be hex or base64 of 16-64 bytes`);
    entries.set(endpoint, { identity, key: bytes });
  }
  return entries;
}
