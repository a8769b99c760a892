import { HttpRequest, HttpResponseInit, InvocationContext, app } from '@azure/functions';
import { toJobView } from '../shared/job';
import { cancelJob } from '../shared/jobOperations';
import { jobEndedEvent, publishBestEffort } from '../shared/twinEvents';
import { eventPublisher, jobStore, now } from './index';
import { jsonResponse, withProblems } from './lib/httpAdapter';

/** DELETE /api/jobs/{jobId}: cancels a queued job (200 with it); 409 once it runs or ran. */
export async function cancelJobHandler(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const job = await cancelJob(await jobStore(), request.params.jobId, now(), async (cancelled) => {
    const event = jobEndedEvent(
      { deviceId: cancelled.deviceId, jobId: cancelled.id, status: 'cancelled' },
      cancelled.endTime ?? now(),
    );
    await publishBestEffort(await eventPublisher(), [event], (message) => context.warn(message));
  });
  return jsonResponse(200, toJobView(job));
}

app.http('cancelJob', {
  methods: ['DELETE'],
  route: 'jobs/{jobId}',
  authLevel: 'function',
  handler: withProblems(cancelJobHandler),
});
