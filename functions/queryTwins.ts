import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { queryTwins } from '../shared/twinOperations';
import { toTwinView } from '../shared/twinView';
import { twinStore } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** Header carrying the continuation token, in both directions. */
export const CONTINUATION_HEADER = 'x-ms-continuation';

/**
 * GET /api/twins?tag=site:plant-7&connectionState=connected&stale=true&where=deviceProperties.batteryLevel lt 20
 * &pageSize=100: one page of matching twins; the next page's token is in the `x-ms-continuation` header.
 */
export async function queryTwinsHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const params = new URL(request.url).searchParams;
  const continuation = request.headers.get(CONTINUATION_HEADER) ?? undefined;
  const page = await queryTwins(await twinStore(), params, continuation);
  const headers: Record<string, string> = {};
  if (page.continuation) headers[CONTINUATION_HEADER] = page.continuation;
  return jsonResponse(200, { twins: page.twins.map(toTwinView), count: page.twins.length }, headers);
}

app.http('queryTwins', {
  methods: ['GET'],
  route: 'twins',
  authLevel: 'function',
  handler: withProblems(queryTwinsHandler),
});
