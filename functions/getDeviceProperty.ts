import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import {
  ageSeconds,
  parseMaxAge,
  parsePreferWait,
  readThroughDeviceProperty,
} from '../shared/readThroughDeviceProperty';
import { toDevicePropertyView } from '../shared/twinView';
import { deepReader, now, twinStore } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** Longest a read-through waits for the device, milliseconds; a client may ask for less with `Prefer: wait=N`. */
export const READ_THROUGH_WAIT_LIMIT_MS = 10_000;

/** Response header naming which one answered: `device` (a deep read made for this request) or `twin`. */
export const SOURCE_HEADER = 'X-Twin-Source';

/**
 * GET /api/twins/{deviceId}/deviceProperties/{name}: one property of the twin, with Last-Modified and Age.
 * `Cache-Control: max-age=N` or `?maxAge=N`: a value older than N seconds is refreshed from the device first
 * (waiting at most READ_THROUGH_WAIT_LIMIT_MS, or `Prefer: wait=N`); the body then says `refreshed` and, when the
 * device did not answer in time, why (`refreshError`), and `X-Twin-Source` says which one answered.
 */
export async function getDevicePropertyHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const { deviceId, name } = request.params;
  const maxAgeSeconds = parseMaxAge(request.headers.get('cache-control'), request.query.get('maxAge'));
  const prefer = request.headers.get('prefer');
  const waitMs = parsePreferWait(prefer, READ_THROUGH_WAIT_LIMIT_MS);
  const result = await readThroughDeviceProperty(
    await twinStore(),
    maxAgeSeconds === undefined ? undefined : await deepReader(),
    deviceId,
    name,
    { maxAgeSeconds, waitMs, now },
  );
  const { property, refresh } = result;
  const headers: Record<string, string> = { 'Cache-Control': 'no-cache', [SOURCE_HEADER]: result.source };
  if (property.lastUpdatedTime) {
    headers['Last-Modified'] = new Date(property.lastUpdatedTime).toUTCString();
    headers.Age = String(Math.floor(ageSeconds(property, now())));
  }
  if (refresh && prefer && /wait\s*=/i.test(prefer)) headers['Preference-Applied'] = `wait=${Math.ceil(waitMs / 1000)}`;
  const body: Record<string, unknown> = { deviceId, name, ...toDevicePropertyView(property) };
  if (refresh) {
    body.refreshed = refresh.refreshed;
    if (!refresh.refreshed) body.refreshError = { code: refresh.code, detail: refresh.detail };
  }
  return jsonResponse(200, body, headers);
}

app.http('getDeviceProperty', {
  methods: ['GET'],
  route: 'twins/{deviceId}/deviceProperties/{name}',
  authLevel: 'function',
  handler: withProblems(getDevicePropertyHandler),
});
