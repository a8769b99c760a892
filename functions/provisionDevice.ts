import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { provisionDevice } from '../shared/twinOperations';
import { toTwinView } from '../shared/twinView';
import { now, twinStore } from './index';
import { jsonResponse, readJsonBody, withProblems } from './lib/httpAdapter';

/** PUT /api/devices/{deviceId}: 201 with the new twin, or 200 with the existing one. Body: optional tags and serviceProperties. */
export async function provisionDeviceHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const deviceId = request.params.deviceId;
  const body = await readJsonBody(request);
  const { twin, created } = await provisionDevice(await twinStore(), deviceId, body, now());
  const view = toTwinView(twin);
  return jsonResponse(created ? 201 : 200, view, {
    ETag: view.etag,
    Location: `/api/twins/${encodeURIComponent(deviceId)}`,
  });
}

app.http('provisionDevice', {
  methods: ['PUT'],
  route: 'devices/{deviceId}',
  authLevel: 'function',
  handler: withProblems(provisionDeviceHandler),
});
