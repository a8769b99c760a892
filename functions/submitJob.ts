import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { toJobView } from '../shared/job';
import { submitJob } from '../shared/jobOperations';
import { submitJobDependencies } from './index';
import { jsonResponse, readJsonBody, withProblems } from './lib/httpAdapter';

/**
 * POST /api/jobs: schedules a deep read, deep write or execute. 202 with the job and `Location: /api/jobs/{jobId}`;
 * 200 with the same job when a client `jobId` repeats the same request; 409 for another request under that id.
 */
export async function submitJobHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const body = await readJsonBody(request);
  const { job, created } = await submitJob(await submitJobDependencies(), body);
  return jsonResponse(created ? 202 : 200, toJobView(job), {
    Location: `/api/jobs/${encodeURIComponent(job.id)}`,
  });
}

app.http('submitJob', {
  methods: ['POST'],
  route: 'jobs',
  authLevel: 'function',
  handler: withProblems(submitJobHandler),
});
