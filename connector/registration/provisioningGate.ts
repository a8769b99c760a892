/**
 * The `authorize` hook of registration: only provisioned endpoints may register (their twin exists), and asking
 * costs the twin store as little as an attacker can make it.
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
import { DeviceAddress } from './registration';

export type Authorization =
  | { ok: true }
  | { ok: false; reason: 'notProvisioned'; detail: string }
  | { ok: false; reason: 'tooManyRequests'; detail: string; retryAfterSeconds: number };

export interface ProvisioningGateOptions {
  /** Whether the endpoint is provisioned (its twin exists). */
  isProvisioned: (endpoint: string) => Promise<boolean>;
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
  async authorize(endpoint: string, source: DeviceAddress, known = false): Promise<Authorization> {
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
    if (await this.options.isProvisioned(endpoint)) {
      this.refused.delete(endpoint);
      return { ok: true };
    }
    return this.refuse(endpoint, source, this.options.now(), true);
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
    const bucket = this.refill(source.address, now) ?? { tokens: this.burst, at: now };
    bucket.tokens -= 1;
    this.buckets.delete(source.address);
    this.buckets.set(source.address, bucket);
    evictOldest(this.buckets, this.maxSources);
    return { ok: false, reason: 'notProvisioned', detail: `endpoint ${endpoint} is not provisioned` };
  }

  private refill(address: string, now: number): Bucket | undefined {
    const bucket = this.buckets.get(address);
    if (!bucket) return undefined;
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    return bucket;
  }
}

function evictOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value as K);
}
