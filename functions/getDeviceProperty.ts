import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { readDeviceProperty } from '../shared/twinOperations';
import { toDevicePropertyView } from '../shared/twinView';
import { twinStore } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** GET /api/twins/{deviceId}/deviceProperties/{name}: one property of the twin, with Last-Modified. */
export async function getDevicePropertyHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const { deviceId, name } = request.params;
  const { property } = await readDeviceProperty(await twinStore(), deviceId, name);
  const headers: Record<string, string> = { 'Cache-Control': 'no-cache' };
  if (property.lastUpdatedTime) headers['Last-Modified'] = new Date(property.lastUpdatedTime).toUTCString();
  return jsonResponse(200, { deviceId, name, ...toDevicePropertyView(property) }, headers);
}

app.http('getDeviceProperty', {
  methods: ['GET'],
  route: 'twins/{deviceId}/deviceProperties/{name}',
  authLevel: 'function',
  handler: withProblems(getDevicePropertyHandler),
});
