/**
 * The twin store: where twins live. `CosmosTwinStore` is the real one; `MemoryTwinStore` serves unit tests
 * of logic. Both keep the same contract, which callers may rely on:
 * - documents are returned with `_etag`; `update` and `applyReadings` never lose a concurrent write;
 * - an older reading never overwrites a newer one (`Reading.time` orders them);
 * - "not found" is `undefined` / `false`, never an exception.
 */
import { Reading, TwinDocument } from './twin';
import { TwinQuery } from './twinQuery';

export interface ApplyReadingsResult {
  /** False when the twin does not exist (deprovisioned). */
  found: boolean;
  /** Property names whose value was written; the others were older than what the twin holds. */
  changed: string[];
  /** Those of `changed` that were flagged stale before this write (fresh again). */
  refreshed: string[];
  /**
   * True when readings were refused because they came from a registration that is not the twin's current one
   * (`Reading.registrationId`): the registration ended, was replaced, or the device was provisioned anew.
   */
  superseded?: boolean;
  /** Cosmos requests made (for measurements). */
  requests: number;
}

/** Readings of one device, for `applyReadingsMany`. */
export interface DeviceReadings {
  deviceId: string;
  readings: readonly Reading[];
}

export interface ApplyManyResult {
  /** One result per input entry, in input order (their `requests` count only requests made for that device alone). */
  results: ApplyReadingsResult[];
  /** Cosmos requests the whole call made (a bulk request counts once, however many devices it carried). */
  requests: number;
}

export interface TwinPage {
  twins: TwinDocument[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  continuation?: string;
}

export interface UpdateOptions {
  /** Fail with `PreconditionFailed` unless the twin's current ETag is this one. */
  ifMatch?: string;
}

export interface TwinStore {
  get(deviceId: string): Promise<TwinDocument | undefined>;
  /** Creates the twin; when one exists already, returns it with `created: false` and changes nothing. */
  create(twin: TwinDocument): Promise<{ twin: TwinDocument; created: boolean }>;
  delete(deviceId: string): Promise<boolean>;
  /**
   * Read-modify-write under the document's ETag, retried on a lost race (unless `ifMatch` is given, then the
   * race is the caller's: `PreconditionFailed`). `mutate` returns the new document, or undefined to change
   * nothing; it must be pure, as it may run more than once. The store increments `version` and recomputes the
   * derived fields (`nextStaleAt`, `staleProperties`). Resolves to the stored twin, or undefined when the
   * twin does not exist.
   */
  update(
    deviceId: string,
    mutate: (twin: TwinDocument) => TwinDocument | undefined,
    options?: UpdateOptions,
  ): Promise<TwinDocument | undefined>;
  /**
   * Writes readings of one device: value, lastUpdatedTime, source, stale cleared. One reading costs one
   * conditional patch; several are one read and one conditional replace. A property the twin has no entry for yet
   * gets the store's observation defaults (pmin/pmax), given at its construction.
   */
  applyReadings(deviceId: string, readings: readonly Reading[]): Promise<ApplyReadingsResult>;
  /**
   * `applyReadings` for many devices at once, with the same rules per device, in as few requests as the store
   * allows (Cosmos: one bulk read and one bulk conditional replace per 100 devices; a device whose twin changed in
   * between goes the `applyReadings` way). Entries must name distinct devices.
   */
  applyReadingsMany(writes: readonly DeviceReadings[]): Promise<ApplyManyResult>;
  /** One page of twins matching the query, ordered by deviceId. */
  query(query: TwinQuery, pageSize: number, continuation?: string): Promise<TwinPage>;
  /** One page of twins whose `nextStaleAt` is at or before `now`. */
  findDue(now: string, pageSize: number, continuation?: string): Promise<TwinPage>;
}
