import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { deprovisionDevice } from '../shared/twinOperations';
import { twinStore } from './index';
import { withProblems } from './lib/httpAdapter';

/** DELETE /api/devices/{deviceId}: 204; the device may no longer register. */
export async function deprovisionDeviceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  await deprovisionDevice(await twinStore(), request.params.deviceId);
  return { status: 204 };
}

app.http('deprovisionDevice', {
  methods: ['DELETE'],
  route: 'devices/{deviceId}',
  authLevel: 'function',
  handler: withProblems(deprovisionDeviceHandler),
});
