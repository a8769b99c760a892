import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { toJobView } from '../shared/job';
import { listDeviceJobs } from '../shared/jobOperations';
import { jobStore } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';
import { CONTINUATION_HEADER } from './queryTwins';

/**
 * GET /api/devices/{deviceId}/jobs?pageSize=50: one page of the device's jobs, newest first; the next page's token
 * is in the `x-ms-continuation` header (send it back as that header or as `?continuation=`).
 */
export async function listDeviceJobsHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const params = new URL(request.url).searchParams;
  const continuation = request.headers.get(CONTINUATION_HEADER) ?? undefined;
  const page = await listDeviceJobs(await jobStore(), request.params.deviceId, params, continuation);
  const headers: Record<string, string> = {};
  if (page.continuation) headers[CONTINUATION_HEADER] = page.continuation;
  return jsonResponse(200, { jobs: page.jobs.map(toJobView), count: page.jobs.length }, headers);
}

app.http('listDeviceJobs', {
  methods: ['GET'],
  route: 'devices/{deviceId}/jobs',
  authLevel: 'function',
  handler: withProblems(listDeviceJobsHandler),
});
