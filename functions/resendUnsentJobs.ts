import { InvocationContext, Timer, app } from '@azure/functions';
import { loadJobsConfig } from '../shared/config';
import { resendUnsentJobs } from '../shared/resendUnsentJobs';
import { publishBestEffort } from '../shared/twinEvents';
import { failExpiredWaitingJobs } from '../shared/waitingJobs';
import { eventPublisher, jobQueue, jobStore, now } from './index';

/**
 * Timer: every `Jobs__queuedSweepSchedule` (six-field NCRONTAB, default every minute), as a singleton across hosts.
 * Re-sends the message of each job still `queued` without `sentTime` `Jobs__queuedSweepAfterSeconds` after its
 * creation, and fails those older than `Jobs__queuedMaxAgeSeconds` (see shared/resendUnsentJobs.ts). Also fails the
 * jobs still waiting for a sleeping queue-mode device past their `expiresAt` with `DeviceAsleep` (shared/waitingJobs.ts).
 */
export async function resendUnsentJobsHandler(timer: Timer, context: InvocationContext): Promise<void> {
  if (timer.isPastDue) context.log('Unsent-job sweep is running late (a scheduled occurrence was missed)');
  const config = loadJobsConfig(process.env);
  const summary = await resendUnsentJobs(await jobStore(), await jobQueue(), {
    now: now(),
    resendAfterSeconds: config.queuedSweepAfterSeconds,
    maxAgeSeconds: config.queuedMaxAgeSeconds,
  });
  if (summary.found > 0) {
    context.log(
      `Unsent-job sweep at ${summary.now}: ${summary.found} unsent jobs, ${summary.resent} sent again, ` +
        `${summary.failed} failed past ${config.queuedMaxAgeSeconds} s, ${summary.unchanged} changed meanwhile, ` +
        `${summary.sendFailures.length} sends failed`,
    );
  }
  for (const failure of summary.sendFailures.slice(0, 10)) {
    context.warn(`Unsent-job sweep: job ${failure.jobId} not sent: ${failure.message}`);
  }
  const expired = await failExpiredWaitingJobs(await jobStore(), { now: summary.now });
  if (expired.found > 0) {
    context.log(
      `Waiting-job sweep at ${summary.now}: ${expired.failed} jobs failed DeviceAsleep past their expiresAt, ` +
        `${expired.unchanged} changed meanwhile`,
    );
  }
  const events = [...summary.events, ...expired.events];
  if (events.length > 0) {
    await publishBestEffort(await eventPublisher(), events, (message) => context.warn(message));
  }
}

app.timer('resendUnsentJobs', {
  schedule: '%Jobs__queuedSweepSchedule%',
  handler: resendUnsentJobsHandler,
});
