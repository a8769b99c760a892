import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { patchTwin } from '../shared/twinOperations';
import { toTwinView } from '../shared/twinView';
import { now, twinStore } from './index';
import { jsonResponse, readJsonBody, withProblems } from './lib/httpAdapter';

/**
 * PATCH /api/twins/{deviceId}: JSON merge patch of tags and serviceProperties (null removes);
 * If-Match gives 412 on a lost race; touching deviceProperties gives 409.
 */
export async function patchTwinHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const body = await readJsonBody(request);
  const ifMatch = request.headers.get('if-match') ?? undefined;
  const twin = await patchTwin(await twinStore(), request.params.deviceId, body ?? {}, ifMatch, now());
  const view = toTwinView(twin);
  return jsonResponse(200, view, { ETag: view.etag });
}

app.http('patchTwin', {
  methods: ['PATCH'],
  route: 'twins/{deviceId}',
  authLevel: 'function',
  handler: withProblems(patchTwinHandler),
});
