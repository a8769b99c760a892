import { TwinError } from './errors';

/** Device ids: 1-128 characters, letters, digits and `-._:@`; the first a letter or digit. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9\-._:@]{0,127}$/;

export function validateDeviceId(deviceId: string | undefined): string {
  if (deviceId === undefined || deviceId === '') {
    throw new TwinError('InvalidDeviceId', 'deviceId is empty', { field: 'deviceId' });
  }
  if (deviceId.length > 128) {
    throw new TwinError('InvalidDeviceId', `deviceId has ${deviceId.length} characters; at most 128 are allowed`, {
      field: 'deviceId',
    });
  }
  if (!DEVICE_ID_PATTERN.test(deviceId)) {
    throw new TwinError(
      'InvalidDeviceId',
      'deviceId may hold only letters, digits and - . _ : @, and must start with a letter or digit',
      { field: 'deviceId' },
    );
  }
  return deviceId;
}
