import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { provisionDevice } from '../shared/twinOperations';
import { toTwinView } from '../shared/twinView';
import { credentialDependencies, now, twinStore } from './index';
import { jsonResponse, readJsonBody, withProblems } from './lib/httpAdapter';

/**
 * PUT /api/devices/{deviceId}: 201 with the new twin, or 200 with the existing one (its credentials unchanged).
 * Body: `security` (mandatory: `{"mode":"psk"}`, `{"mode":"psk","identity":"...","key":"<hex|base64>"}` or
 * `{"mode":"none"}`), optional tags and serviceProperties. A key the service generated is in the 201's
 * `security.key`, that once only (`Cache-Control: no-store`).
 */
export async function provisionDeviceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const deviceId = request.params.deviceId;
  const body = await readJsonBody(request);
  const { twin, created, security } = await provisionDevice(
    await twinStore(),
    await credentialDependencies(),
    deviceId,
    body,
    now(),
  );
  const view = toTwinView(twin);
  return jsonResponse(created ? 201 : 200, security ? { ...view, security } : view, {
    ETag: view.etag,
    Location: `/api/twins/${encodeURIComponent(deviceId)}`,
    'Cache-Control': 'no-store',
  });
}

app.http('provisionDevice', {
  methods: ['PUT'],
  route: 'devices/{deviceId}',
  authLevel: 'function',
  handler: withProblems(provisionDeviceHandler),
});
