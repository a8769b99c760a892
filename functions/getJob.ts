import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { toJobView } from '../shared/job';
import { getJob } from '../shared/jobOperations';
import { jobStore } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** GET /api/jobs/{jobId}: the job's status, and its result or error. */
export async function getJobHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const job = await getJob(await jobStore(), request.params.jobId);
  return jsonResponse(200, toJobView(job), { 'Cache-Control': 'no-cache' });
}

app.http('getJob', {
  methods: ['GET'],
  route: 'jobs/{jobId}',
  authLevel: 'function',
  handler: withProblems(getJobHandler),
});
