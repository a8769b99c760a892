import { InvocationContext, Timer, app } from '@azure/functions';
import { loadStalenessConfig } from '../shared/config';
import { SweepSummary, flagStaleProperties } from '../shared/flagStaleProperties';
import { EventPublisher } from '../shared/twinEvents';
import { TwinStore } from '../shared/twinStore';
import { eventPublisher, now, twinStore } from './index';

/**
 * A sweep stops starting new twins after this long, milliseconds; the rest stay due for the next run. Below the
 * default schedule's one-minute period, so runs do not pile up behind a backlog.
 */
export const SWEEP_TIME_BUDGET_MS = 50_000;

export interface FlagStalePropertiesDependencies {
  store: TwinStore;
  /** Asked for only when there are events, so a Service Bus outage never stops the flags from being written. */
  publisher: () => Promise<EventPublisher>;
  now: string;
  graceSeconds: number;
}

/** One sweep, then its events; a publishing failure is logged, not thrown (the flags are written already). */
export async function runStalenessSweep(
  dependencies: FlagStalePropertiesDependencies,
  context: InvocationContext,
): Promise<SweepSummary> {
  const summary = await flagStaleProperties(dependencies.store, {
    now: dependencies.now,
    graceSeconds: dependencies.graceSeconds,
    timeBudgetMs: SWEEP_TIME_BUDGET_MS,
  });
  context.log(
    `Staleness sweep at ${summary.now}: ${summary.dueTwins} due twins, ${summary.flaggedProperties} properties ` +
      `flagged on ${summary.flaggedTwins} twins, ${summary.correctedTwins} due times corrected, ` +
      `${summary.vanishedTwins} vanished, ${summary.failures.length} failed, ${summary.requests} Cosmos requests` +
      (summary.complete ? '' : ' (time budget used up: the rest stay due for the next sweep)'),
  );
  for (const failure of summary.failures.slice(0, 10)) {
    context.warn(`Staleness sweep: twin ${failure.deviceId} not written: ${failure.message}`);
  }
  if (summary.events.length > 0) {
    try {
      await (await dependencies.publisher()).publish(summary.events);
    } catch (error) {
      context.error(
        `Staleness sweep: ${summary.events.length} propertyStale events not published: ${(error as Error).message}`,
      );
    }
  }
  return summary;
}

/** Timer: every `Staleness__schedule` (six-field NCRONTAB, default every minute), as a singleton across hosts. */
export async function flagStalePropertiesHandler(timer: Timer, context: InvocationContext): Promise<void> {
  if (timer.isPastDue) context.log('Staleness sweep is running late (a scheduled occurrence was missed)');
  await runStalenessSweep(
    {
      store: await twinStore(),
      publisher: eventPublisher,
      now: now(),
      graceSeconds: loadStalenessConfig(process.env).graceSeconds,
    },
    context,
  );
}

app.timer('flagStaleProperties', {
  schedule: '%Staleness__schedule%',
  handler: flagStalePropertiesHandler,
});
