/**
 * Continuation tokens of paged lists (`x-ms-continuation` or `?continuation=`). They are the store's opaque tokens,
 * handed back as they came; this module only refuses what cannot be one, before it reaches the Cosmos SDK (which,
 * like the local Cosmos server, may otherwise ignore a garbage token and answer page 1), and recognises the store's
 * own "bad continuation" failures. Both become `InvalidContinuation` (400) naming the field `continuation`.
 */
import { TwinError } from './errors';

/**
 * Longest token accepted, characters. Cosmos tokens carry a resume position and can reach several KB (the
 * `#FPC:` filter part of a backend token has been seen near 8 KB); Node refuses request headers past 16 KB anyway.
 */
export const MAX_CONTINUATION_LENGTH = 16 * 1024;

/** A backend token as the Cosmos service issues it: `+RID:...#RT:1#TRC:2...` (or `-RID:~...`). */
const BACKEND_TOKEN = /^[+-]RID:\S+$/;

/**
 * What every token the store hands out looks like: the service's own `[+-]RID:` form, or the JSON object or array
 * the SDKs (and the local Cosmos server) wrap it in (`{"token":"+RID:...","range":{...}}`, `[{"token":...}]`,
 * `{"compositeToken":...}`). Anything else is refused with `InvalidContinuation`; a token of the right shape that
 * the store still cannot use is mapped by `toContinuationError`.
 */
export function validateContinuationToken(token: string): void {
  if (token.length === 0 || token.length > MAX_CONTINUATION_LENGTH) {
    throw invalidContinuation(`must be 1 to ${MAX_CONTINUATION_LENGTH} characters; got ${token.length}`);
  }
  if (BACKEND_TOKEN.test(token)) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(token);
  } catch {
    throw invalidContinuation('is not a token this API handed out');
  }
  if (typeof parsed !== 'object' || parsed === null || (Array.isArray(parsed) && parsed.length === 0)) {
    throw invalidContinuation('is not a token this API handed out');
  }
}

/**
 * The error a store threw while given `token`, as the caller's `InvalidContinuation` when it is the store saying
 * the token is bad: a 400 from the service or the local server, a JSON SyntaxError, or an SDK error about the token
 * ("Failed to parse continuation token", "Invalid continuation token format"). Other errors come back unchanged.
 */
export function toContinuationError(error: unknown, token: string | undefined): unknown {
  if (token === undefined) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : '';
  if (code === 400 || error instanceof SyntaxError || /continuation token/i.test(message)) {
    return invalidContinuation('was refused by the store: it does not continue this list');
  }
  return error;
}

function invalidContinuation(why: string): TwinError {
  return new TwinError('InvalidContinuation', `The continuation token ${why}; start again without it`, {
    field: 'continuation',
  });
}
