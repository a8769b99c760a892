/**
 * The `authorize` hook of registration: only provisioned endpoints may register, each the way it was provisioned —
 * a device provisioned with a pre-shared key only over DTLS (`coaps`) and only with a session whose PSK identity is
 * its own; a device provisioned without security only over plain CoAP. Asking costs the store behind `lookup` as
 * little as an attacker can make it:
 *
 * - A refused endpoint is remembered for `negativeTtlMs` (at most `maxRemembered` endpoints, oldest forgotten
 *   first), so a Register storm for one unprovisioned name costs one twin read per TTL. A device provisioned during
 *   that window is let in at its next Register after the TTL (LwM2M clients retry with back-off).
 * - Refusals are rate-limited per source address (IP, not port: a spoofer varies ports freely): a token bucket of
 *   `refusalBurst` that refills at `refusalsPerSecond`. A source out of tokens gets 4.29 (with the seconds to wait)
 *   and no store read until it has tokens again. Only refusals spend tokens, so devices behind one NAT address are
 *   not slowed by each other's Registers; while a neighbour's refusals have emptied the bucket, a device that holds a
 *   registration here (`known`) still gets its lookup, and a new one waits the seconds 4.29 names.
 *
 * Both tables are bounded, so neither can be grown without limit by spoofed traffic.
 */
import { DeviceAddress, TransportName } from './registration';

export type Authorization =
  | { ok: true }
  | { ok: false; reason: 'notProvisioned' | 'wrongSecurity'; detail: string }
  | { ok: false; reason: 'tooManyRequests'; detail: string; retryAfterSeconds: number };

/** How a device was provisioned: with a pre-shared key (and its PSK identity), or explicitly without security. */
export interface DeviceSecurity {
  mode: 'psk' | 'none';
  identity?: string;
}

/** What the gate looks at in a Register. */
export interface RegisterAttempt {
  endpoint: string;
  source: DeviceAddress;
  transport: TransportName;
  /** The PSK identity of the DTLS session (`coaps`). */
  identity?: string;
}

export interface ProvisioningGateOptions {
  /** The endpoint's provisioned security, or undefined when it is not provisioned. */
  lookup: (endpoint: string) => Promise<DeviceSecurity | undefined>;
  now: () => number;
  negativeTtlMs?: number;
  maxRemembered?: number;
  refusalBurst?: number;
  refusalsPerSecond?: number;
  maxSources?: number;
}

/** Defaults: 10 s negative TTL; 20 refusals at once per source, then one every 2 s. */
const DEFAULT_NEGATIVE_TTL_MS = 10_000;
const DEFAULT_MAX_REMEMBERED = 10_000;
const DEFAULT_REFUSAL_BURST = 20;
const DEFAULT_REFUSALS_PER_SECOND = 0.5;
const DEFAULT_MAX_SOURCES = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export interface ProvisioningGateStats {
  lookups: number;
  cachedRefusals: number;
  rateLimited: number;
}

export class ProvisioningGate {
  readonly stats: ProvisioningGateStats = { lookups: 0, cachedRefusals: 0, rateLimited: 0 };
  /** Refused endpoint -> until (ms); insertion order = age. */
  private readonly refused = new Map<string, number>();
  /** Source IP -> refusal bucket; insertion order = last refusal. */
  private readonly buckets = new Map<string, Bucket>();
  private readonly negativeTtlMs: number;
  private readonly maxRemembered: number;
  private readonly burst: number;
  private readonly perSecond: number;
  private readonly maxSources: number;

  constructor(private readonly options: ProvisioningGateOptions) {
    this.negativeTtlMs = options.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS;
    this.maxRemembered = options.maxRemembered ?? DEFAULT_MAX_REMEMBERED;
    this.burst = options.refusalBurst ?? DEFAULT_REFUSAL_BURST;
    this.perSecond = options.refusalsPerSecond ?? DEFAULT_REFUSALS_PER_SECOND;
    this.maxSources = options.maxSources ?? DEFAULT_MAX_SOURCES;
  }

  /** `known`: the endpoint holds a registration here already (it was provisioned then): never rate-limited. */
  async authorize(attempt: RegisterAttempt, known = false): Promise<Authorization> {
    const { endpoint, source } = attempt;
    const now = this.options.now();
    const bucket = this.refill(source.address, now);
    if (!known && bucket && bucket.tokens < 1) {
      this.stats.rateLimited++;
      const retryAfterSeconds = Math.ceil((1 - bucket.tokens) / this.perSecond);
      return {
        ok: false,
        reason: 'tooManyRequests',
        detail: `too many refused registrations from ${source.address}; retry in ${retryAfterSeconds} s`,
        retryAfterSeconds,
      };
    }
    const until = this.refused.get(endpoint);
    if (until !== undefined && until > now) {
      this.stats.cachedRefusals++;
      return this.refuse(endpoint, source, now, false);
    }
    this.stats.lookups++;
    const security = await this.options.lookup(endpoint);
    if (!security) return this.refuse(endpoint, source, this.options.now(), true);
    this.refused.delete(endpoint);
    const mismatch = securityMismatch(attempt, security);
    if (mismatch === undefined) return { ok: true };
    // Not remembered (the endpoint is provisioned), but it spends the source's refusal tokens.
    this.spend(source.address, this.options.now());
    return { ok: false, reason: 'wrongSecurity', detail: mismatch };
  }

  /** Forgets a refusal at once (the device was provisioned through this process). */
  forget(endpoint: string): void {
    this.refused.delete(endpoint);
  }

  private refuse(endpoint: string, source: DeviceAddress, now: number, remember: boolean): Authorization {
    if (remember) {
      this.refused.delete(endpoint);
      this.refused.set(endpoint, now + this.negativeTtlMs);
      evictOldest(this.refused, this.maxRemembered);
    }
    this.spend(source.address, now);
    return { ok: false, reason: 'notProvisioned', detail: `endpoint ${endpoint} is not provisioned` };
  }

  private spend(address: string, now: number): void {
    const bucket = this.refill(address, now) ?? { tokens: this.burst, at: now };
    bucket.tokens -= 1;
    this.buckets.delete(address);
    this.buckets.set(address, bucket);
    evictOldest(this.buckets, this.maxSources);
  }

  private refill(address: string, now: number): Bucket | undefined {
    const bucket = this.buckets.get(address);
    if (!bucket) return undefined;
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    return bucket;
  }
}

/**
 * Why a Register does not match the device's provisioning, or undefined when it does. The reason names the endpoint
 * and the transport, never the identity or the key.
 */
function securityMismatch(attempt: RegisterAttempt, security: DeviceSecurity): string | undefined {
  if (security.mode === 'psk') {
    if (attempt.transport !== 'coaps') {
      return `endpoint ${attempt.endpoint} is provisioned with a pre-shared key: register over DTLS (coaps)`;
    }
    if (attempt.identity !== security.identity) {
      return `the DTLS session's identity does not belong to endpoint ${attempt.endpoint}`;
    }
    return undefined;
  }
  if (attempt.transport !== 'coap') return `endpoint ${attempt.endpoint} is provisioned without security: use coap`;
  return undefined;
}

function evictOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value as K);
}
