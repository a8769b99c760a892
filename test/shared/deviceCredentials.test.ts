import {
  REVOKED_CREDENTIAL_TTL_SECONDS,
  credentialRecord,
  decodeKey,
  parseSecurity,
  revokedRecord,
  securityView,
} from '../../shared/deviceCredentials';
import { TwinError, isTwinError } from '../../shared/errors';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const KEY16 = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function refusal(body: unknown, field = 'security'): TwinError {
  try {
    parseSecurity(body, field);
  } catch (error) {
    if (isTwinError(error, 'InvalidRequest')) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('parseSecurity', () => {
  it('accepts psk with or without identity and key, and an explicit none', () => {
    expect(parseSecurity({ mode: 'none' }, 'security')).toEqual({ mode: 'none' });
    expect(parseSecurity({ mode: 'psk' }, 'security')).toEqual({ mode: 'psk' });
    expect(parseSecurity({ mode: 'psk', identity: 'dev 1@site', key: KEY16.toString('hex') }, 'security')).toEqual({
      mode: 'psk',
      identity: 'dev 1@site',
      key: KEY16.toString('hex'),
    });
  });

  it('requires security, telling the caller to say none explicitly', () => {
    const error = refusal(undefined);
    expect(error.status).toBe(400);
    expect(error.extensions.field).toBe('security');
    expect(error.message).toContain('{"mode":"none"}');
  });

  it.each<[unknown, string]>([
    [null, 'security'],
    ['psk', 'security'],
    [[], 'security'],
    [{}, 'security.mode'],
    [{ mode: 'PSK' }, 'security.mode'],
    [{ mode: 'x509' }, 'security.mode'],
    [{ mode: 'psk', secret: 'x' }, 'security.secret'],
    [{ mode: 'none', key: KEY16.toString('hex') }, 'security.key'],
    [{ mode: 'none', identity: 'a' }, 'security.identity'],
    [{ mode: 'psk', identity: '' }, 'security.identity'],
    [{ mode: 'psk', identity: 'x'.repeat(129) }, 'security.identity'],
    [{ mode: 'psk', identity: 'caf\u00e9' }, 'security.identity'],
    [{ mode: 'psk', identity: 'a\nb' }, 'security.identity'],
    [{ mode: 'psk', identity: 7 }, 'security.identity'],
    [{ mode: 'psk', key: 42 }, 'security.key'],
    [{ mode: 'psk', key: '' }, 'security.key'],
    [{ mode: 'psk', key: 'ab'.repeat(15) }, 'security.key'],
    [{ mode: 'psk', key: 'ab'.repeat(65) }, 'security.key'],
    [{ mode: 'psk', key: 'not a key at all, with spaces' }, 'security.key'],
    [{ mode: 'psk', key: Buffer.alloc(15).toString('base64') }, 'security.key'],
    [{ mode: 'psk', key: Buffer.alloc(65).toString('base64') }, 'security.key'],
  ])('refuses %j with 400 naming %s', (body, field) => {
    const error = refusal(body);
    expect(error.status).toBe(400);
    expect(error.extensions.field).toBe(field);
  });

  it('never echoes a refused key', () => {
    const key = 'secret!'.repeat(5);
    expect(JSON.stringify({ message: refusal({ mode: 'psk', key }).message })).not.toContain(key);
  });

  it('uses the field name it is given', () => {
    expect(refusal({ mode: 'psk', key: 'x' }, 'credentials').extensions.field).toBe('credentials.key');
  });
});

describe('decodeKey', () => {
  it('reads hex (either case), base64 and base64url; hex wins when the text is both', () => {
    const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => 250 - i));
    expect(decodeKey(bytes.toString('hex'))).toEqual(bytes);
    expect(decodeKey(bytes.toString('hex').toUpperCase())).toEqual(bytes);
    expect(decodeKey(bytes.toString('base64'))).toEqual(bytes);
    expect(decodeKey(bytes.toString('base64').replace(/=+$/, ''))).toEqual(bytes);
    expect(decodeKey(bytes.toString('base64url'))).toEqual(bytes);
    expect(decodeKey('0123456789abcdef0123456789abcdef')).toEqual(
      Buffer.from('0123456789abcdef0123456789abcdef', 'hex'),
    );
  });

  it('bounds keys to 16-64 bytes', () => {
    expect(decodeKey(Buffer.alloc(16, 1).toString('base64'))?.length).toBe(16);
    expect(decodeKey(Buffer.alloc(64, 1).toString('hex'))?.length).toBe(64);
    expect(decodeKey(Buffer.alloc(15, 1).toString('hex'))).toBeUndefined();
    expect(decodeKey(Buffer.alloc(65, 1).toString('base64'))).toBeUndefined();
    expect(decodeKey('abc')).toBeUndefined();
    expect(decodeKey('AAAA=AAAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
  });
});

describe('credentialRecord', () => {
  it('generates a 16-byte key for psk without one, returns it once, and defaults the identity to the deviceId', () => {
    const { record, generatedKey } = credentialRecord('sim-001', { mode: 'psk' }, NOW, () => KEY16);
    expect(record).toEqual({
      id: 'sim-001',
      deviceId: 'sim-001',
      mode: 'psk',
      identity: 'sim-001',
      key: KEY16.toString('base64'),
      version: NOW,
      revoked: false,
      updatedTime: '2026-03-01T12:00:00.000Z',
    });
    expect(generatedKey).toBe(KEY16.toString('base64'));
  });

  it('stores a given key as base64 and returns no key', () => {
    const generate = jest.fn(() => KEY16);
    const given = Buffer.alloc(32, 7);
    const { record, generatedKey } = credentialRecord(
      'd',
      { mode: 'psk', identity: 'id-1', key: given.toString('hex') },
      NOW,
      generate,
    );
    expect(record.key).toBe(given.toString('base64'));
    expect(record.identity).toBe('id-1');
    expect(generatedKey).toBeUndefined();
    expect(generate).not.toHaveBeenCalled();
  });

  it('writes mode none without identity, key or ttl', () => {
    const { record, generatedKey } = credentialRecord('d', { mode: 'none' }, NOW, () => KEY16);
    expect(record).toEqual({
      id: 'd',
      deviceId: 'd',
      mode: 'none',
      version: NOW,
      revoked: false,
      updatedTime: '2026-03-01T12:00:00.000Z',
    });
    expect(generatedKey).toBeUndefined();
  });

  it('a later version is newer', () => {
    const first = credentialRecord('d', { mode: 'psk' }, NOW, () => KEY16).record;
    const second = credentialRecord('d', { mode: 'psk' }, NOW + 1, () => Buffer.alloc(16, 9)).record;
    expect(second.version).toBeGreaterThan(first.version);
  });
});

describe('revokedRecord and securityView', () => {
  it('revokes with a ttl and nothing that could open a session', () => {
    const record = revokedRecord('d', NOW);
    expect(record).toEqual({
      id: 'd',
      deviceId: 'd',
      mode: 'psk',
      version: NOW,
      revoked: true,
      updatedTime: '2026-03-01T12:00:00.000Z',
      ttl: REVOKED_CREDENTIAL_TTL_SECONDS,
    });
    expect(REVOKED_CREDENTIAL_TTL_SECONDS).toBe(7 * 24 * 3600);
  });

  it('shows mode and identity, never the key', () => {
    const { record } = credentialRecord('d', { mode: 'psk' }, NOW, () => KEY16);
    expect(securityView(record)).toEqual({ mode: 'psk', identity: 'd' });
    expect(JSON.stringify(securityView(record))).not.toContain(KEY16.toString('base64'));
    expect(securityView({ mode: 'none' })).toEqual({ mode: 'none' });
  });
});
