import { HttpRequest, HttpResponseInit, app } from '@azure/functions';
import { toJobView } from '../shared/job';
import { cancelJob } from '../shared/jobOperations';
import { jobStore, now } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** DELETE /api/jobs/{jobId}: cancels a queued job (200 with it); 409 once it runs or ran. */
export async function cancelJobHandler(request: HttpRequest): Promise<HttpResponseInit> {
  const job = await cancelJob(await jobStore(), request.params.jobId, now());
  return jsonResponse(200, toJobView(job));
}

app.http('cancelJob', {
  methods: ['DELETE'],
  route: 'jobs/{jobId}',
  authLevel: 'function',
  handler: withProblems(cancelJobHandler),
});
