/**
 * The staleness sweep: finds the twins that are due (indexed `nextStaleAt <= now`, so the cost follows the due
 * twins, not the fleet) and flags their overdue properties.
 *
 * Each due twin is written with `TwinStore.update`, a conditional read-modify-write under its ETag: a notify that
 * lands between the sweep's read and write makes the write fail, and the rule re-runs on the notified document,
 * so a stale flag never overwrites a fresher value.
 *
 * The due set is listed completely before the first write: the writes move twins out of it, and a continuation
 * token over a result set that changes under it may skip items (the local Cosmos server resumes by position).
 */
import { StaleFlag, decideSweep } from './staleness';
import { TwinEvent, propertyStaleEvents } from './twinEvents';
import { TwinStore } from './twinStore';

export interface SweepOptions {
  /** The sweep's moment (ISO-8601 UTC): properties past staleAt at this time are flagged. */
  now: string;
  graceSeconds: number;
  /** Due twins per query page (default 100). */
  pageSize?: number;
  /** Twins written at once (default 8). */
  concurrency?: number;
  /**
   * Milliseconds after which no further page is listed and no further twin is started; the rest stay due for the
   * next sweep (`complete: false`). Default: no limit.
   */
  timeBudgetMs?: number;
  /** Monotonic milliseconds, for the time budget (default `performance.now`). */
  elapsedClock?: () => number;
}

export interface SweepSummary {
  now: string;
  /** Twins the due query returned. */
  dueTwins: number;
  /** Twins written with at least one new stale flag, and the properties flagged. */
  flaggedTwins: number;
  flaggedProperties: number;
  /** Twins whose early due time was rewritten, nothing being stale yet. */
  correctedTwins: number;
  /** Twins deprovisioned between the query and the write. */
  vanishedTwins: number;
  /** Twins whose write failed (left due; the next sweep retries them), with the reason. */
  failures: { deviceId: string; message: string }[];
  /** Due-query pages read. */
  pages: number;
  /**
   * Cosmos requests the sweep made: QUERY_REQUESTS_PER_PAGE per due-query page, and per update attempt one read plus
   * one replace when it writes (the `CosmosTwinStore.update` contract; a lost ETag race costs one more attempt).
   */
  requests: number;
  /** False when the time budget ran out before every due twin was handled. */
  complete: boolean;
  /** One `propertyStale` event per flagged property, in sweep order, to publish. */
  events: TwinEvent[];
}

/**
 * Requests one due-query page costs with `@azure/cosmos` 4.x: the query plan, then the page (one partition key
 * range; Azure Cosmos DB adds one per further physical partition the page spans).
 */
export const QUERY_REQUESTS_PER_PAGE = 2;

const DEFAULT_PAGE_SIZE = 100;
const DEFAULT_CONCURRENCY = 8;

export async function flagStaleProperties(store: TwinStore, options: SweepOptions): Promise<SweepSummary> {
  const { now, graceSeconds } = options;
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const elapsed = options.elapsedClock ?? (() => performance.now());
  const started = elapsed();
  const budgetLeft = () => options.timeBudgetMs === undefined || elapsed() - started < options.timeBudgetMs;

  const summary: SweepSummary = {
    now,
    dueTwins: 0,
    flaggedTwins: 0,
    flaggedProperties: 0,
    correctedTwins: 0,
    vanishedTwins: 0,
    failures: [],
    pages: 0,
    requests: 0,
    complete: true,
    events: [],
  };

  const due: string[] = [];
  let continuation: string | undefined;
  do {
    if (!budgetLeft()) {
      summary.complete = false;
      break;
    }
    const page = await store.findDue(now, pageSize, continuation);
    summary.pages++;
    summary.requests += QUERY_REQUESTS_PER_PAGE;
    for (const twin of page.twins) due.push(twin.deviceId);
    continuation = page.continuation;
  } while (continuation !== undefined);
  summary.dueTwins = due.length;

  const sweepOne = async (deviceId: string) => {
    let flags: StaleFlag[] = [];
    let corrected = false;
    try {
      const stored = await store.update(deviceId, (twin) => {
        summary.requests++;
        const decision = decideSweep(twin, now, graceSeconds);
        // The last run of this function decided what was stored: earlier runs lost an ETag race.
        flags = decision.action === 'flag' ? decision.flags : [];
        corrected = decision.action === 'correctDueTime';
        if (decision.action === 'none') return undefined;
        summary.requests++;
        return decision.twin;
      });
      if (!stored) {
        summary.requests++; // the read that found nothing
        summary.vanishedTwins++;
        return;
      }
    } catch (error) {
      summary.failures.push({ deviceId, message: error instanceof Error ? error.message : String(error) });
      return;
    }
    if (flags.length > 0) {
      summary.flaggedTwins++;
      summary.flaggedProperties += flags.length;
      summary.events.push(...propertyStaleEvents(deviceId, flags));
    } else if (corrected) {
      summary.correctedTwins++;
    }
  };

  let next = 0;
  const worker = async () => {
    while (next < due.length) {
      if (!budgetLeft()) {
        summary.complete = false;
        return;
      }
      await sweepOne(due[next++]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, due.length) }, worker));
  return summary;
}
