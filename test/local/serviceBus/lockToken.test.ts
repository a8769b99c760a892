import {
  deliveryTagOf,
  lockTokenOfDeliveryTag,
  lockTokenOfUuidBytes,
  newLockToken,
  uuidBytesOf,
} from '../../../local/serviceBus/lockToken';

const TOKEN = '00112233-4455-6677-8899-aabbccddeeff';

test('the delivery tag has the first three GUID groups in .NET (little-endian) byte order', () => {
  expect(deliveryTagOf(TOKEN).toString('hex')).toBe('33221100554477668899aabbccddeeff');
  expect(lockTokenOfDeliveryTag(deliveryTagOf(TOKEN))).toBe(TOKEN);
});

test('management requests carry the token as a plain uuid', () => {
  expect(uuidBytesOf(TOKEN).toString('hex')).toBe('00112233445566778899aabbccddeeff');
  expect(lockTokenOfUuidBytes(uuidBytesOf(TOKEN))).toBe(TOKEN);
});

test('new tokens are distinct GUIDs; bad input is named', () => {
  const token = newLockToken();
  expect(token).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(newLockToken()).not.toBe(token);
  expect(() => uuidBytesOf('not-a-guid')).toThrow("'not-a-guid' is not a lock token");
  expect(() => lockTokenOfUuidBytes(Buffer.alloc(3))).toThrow('a lock token has 16 bytes, got 3');
});
