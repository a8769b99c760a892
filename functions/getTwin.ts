import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { readTwin } from '../shared/twinOperations';
import { httpEtag, toTwinView } from '../shared/twinView';
import { twinStore } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** GET /api/twins/{deviceId}: the whole twin (shallow read), with ETag; If-None-Match gives 304. */
export async function getTwinHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const twin = await readTwin(await twinStore(), request.params.deviceId);
  const etag = httpEtag(twin);
  if (matchesEtag(request.headers.get('if-none-match'), etag)) {
    return { status: 304, headers: { ETag: etag } };
  }
  return jsonResponse(200, toTwinView(twin), { ETag: etag, 'Cache-Control': 'no-cache' });
}

/** If-None-Match: `*` or a list of (possibly weak) ETags. */
export function matchesEtag(header: string | null, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim().replace(/^W\//, '');
    return tag === '*' || tag === etag;
  });
}

app.http('getTwin', {
  methods: ['GET'],
  route: 'twins/{deviceId}',
  authLevel: 'function',
  handler: withProblems(getTwinHandler),
});
