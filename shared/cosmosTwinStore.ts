/**
 * TwinStore over Cosmos DB: container `twins`, partition key `/deviceId`, id = deviceId.
 */
import {
  Container,
  CosmosClient,
  ErrorResponse,
  IndexingPolicy,
  JSONObject,
  OperationInput,
  PatchOperation,
} from '@azure/cosmos';
import { DEFAULT_OBSERVATION, ObservationDefaults, findProperty } from './catalog';
import { PARTITION_KEY_PATH, TWINS_CONTAINER } from './constants';
import { TwinError } from './errors';
import { Reading, TwinDocument, applyReadings, readingPatch, withDerivedFields } from './twin';
import { ApplyManyResult, ApplyReadingsResult, DeviceReadings, TwinPage, TwinStore, UpdateOptions } from './twinStore';
import { TwinQuery, toSql } from './twinQuery';

/**
 * Only what the app queries is indexed: tags, connection state, property values and flags, the due time.
 * Must equal the `twins` container's policy in infra/ (checked in CI).
 */
export const TWINS_INDEXING_POLICY: IndexingPolicy = {
  indexingMode: 'consistent',
  automatic: true,
  includedPaths: [
    { path: '/deviceId/?' },
    { path: '/tags/*' },
    { path: '/connection/state/?' },
    { path: '/deviceProperties/*' },
    { path: '/serviceProperties/*' },
    { path: '/staleProperties/*' },
    { path: '/nextStaleAt/?' },
  ],
  excludedPaths: [{ path: '/*' }, { path: '/"_etag"/?' }],
};

/** Lost ETag races retried before giving up (each retry re-reads the twin). */
const MAX_RACE_RETRIES = 20;
/** Operations per bulk request (the Cosmos limit). */
const MAX_BULK_OPERATIONS = 100;

export async function openTwinsContainer(client: CosmosClient, databaseName: string): Promise<Container> {
  const { database } = await client.databases.createIfNotExists({ id: databaseName });
  const { container } = await database.containers.createIfNotExists({
    id: TWINS_CONTAINER,
    partitionKey: { paths: [PARTITION_KEY_PATH] },
    indexingPolicy: TWINS_INDEXING_POLICY,
  });
  return container;
}

/** ETags compare without their HTTP quotes (Cosmos returns them quoted, the local server bare). */
export function sameEtag(a: string | undefined, b: string | undefined): boolean {
  const bare = (etag: string | undefined) => etag?.replace(/^W\//, '').replace(/^"|"$/g, '');
  return a !== undefined && b !== undefined && bare(a) === bare(b);
}

function statusOf(error: unknown): number | undefined {
  return error instanceof Error ? ((error as ErrorResponse).code as number | undefined) : undefined;
}

export class CosmosTwinStore implements TwinStore {
  /**
   * `graceSeconds`: the staleness grace in the derived `nextStaleAt`; `observation`: pmin/pmax of a property that a
   * reading brings before the twin has an entry for it (default: the Azure defaults, 300 s / 6 h).
   */
  constructor(
    private readonly container: Container,
    private readonly graceSeconds: number,
    private readonly observation: ObservationDefaults = DEFAULT_OBSERVATION,
  ) {}

  async get(deviceId: string): Promise<TwinDocument | undefined> {
    try {
      const { resource } = await this.container.item(deviceId, deviceId).read<TwinDocument>();
      return resource;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async create(twin: TwinDocument): Promise<{ twin: TwinDocument; created: boolean }> {
    try {
      const { resource } = await this.container.items.create<TwinDocument>(withDerivedFields(twin, this.graceSeconds));
      return { twin: resource as TwinDocument, created: true };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      const existing = await this.get(twin.deviceId);
      if (!existing) return this.create(twin);
      return { twin: existing, created: false };
    }
  }

  async delete(deviceId: string): Promise<boolean> {
    try {
      await this.container.item(deviceId, deviceId).delete();
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async update(
    deviceId: string,
    mutate: (twin: TwinDocument) => TwinDocument | undefined,
    options: UpdateOptions = {},
  ): Promise<TwinDocument | undefined> {
    for (let attempt = 0; attempt < MAX_RACE_RETRIES; attempt++) {
      const current = await this.get(deviceId);
      if (!current) return undefined;
      if (options.ifMatch !== undefined && !sameEtag(current._etag, options.ifMatch)) {
        throw new TwinError('PreconditionFailed', `The twin of ${deviceId} changed; its ETag is now ${current._etag}`);
      }
      const mutated = mutate(current);
      if (!mutated) return current;
      const next = withDerivedFields({ ...mutated, version: current.version + 1 }, this.graceSeconds);
      const stored = await this.replaceIfMatch(next, current._etag as string);
      if (stored) return stored;
      if (options.ifMatch !== undefined) {
        throw new TwinError('PreconditionFailed', `The twin of ${deviceId} changed during the update`);
      }
    }
    throw new Error(`Twin ${deviceId}: gave up after ${MAX_RACE_RETRIES} lost ETag races`);
  }

  async applyReadings(deviceId: string, readings: readonly Reading[]): Promise<ApplyReadingsResult> {
    if (readings.length === 0) return { found: true, changed: [], refreshed: [], requests: 0 };
    let requests = 0;
    if (readings.length === 1) {
      requests++;
      const outcome = await this.patchReading(deviceId, readings[0]);
      if (outcome !== 'conditionFailed') {
        // The patch applies only to properties that were not stale, so nothing is refreshed on this path.
        return {
          found: outcome === 'patched',
          changed: outcome === 'patched' ? [readings[0].name] : [],
          refreshed: [],
          requests,
        };
      }
    }
    for (let attempt = 0; attempt < MAX_RACE_RETRIES; attempt++) {
      requests++;
      const current = await this.get(deviceId);
      if (!current) return { found: false, changed: [], refreshed: [], requests };
      const { twin, changed, refreshed, superseded } = applyReadings(
        current,
        readings,
        this.observation,
        this.graceSeconds,
      );
      if (changed.length === 0) return { found: true, changed, refreshed, superseded, requests };
      requests++;
      if (await this.replaceIfMatch(twin, current._etag as string))
        return { found: true, changed, refreshed, superseded, requests };
    }
    throw new Error(`Twin ${deviceId}: gave up after ${MAX_RACE_RETRIES} lost ETag races`);
  }

  async applyReadingsMany(writes: readonly DeviceReadings[]): Promise<ApplyManyResult> {
    if (writes.length === 1) {
      const result = await this.applyReadings(writes[0].deviceId, writes[0].readings);
      return { results: [result], requests: result.requests };
    }
    const results: (ApplyReadingsResult | undefined)[] = new Array(writes.length);
    let requests = 0;
    for (let first = 0; first < writes.length; first += MAX_BULK_OPERATIONS) {
      const chunk = writes.slice(first, first + MAX_BULK_OPERATIONS);
      requests += await this.bulkApply(chunk, (k, result) => (results[first + k] = result));
    }
    // What the bulk requests did not settle (a lost ETag race, throttling) goes the one-by-one way.
    for (let i = 0; i < writes.length; i++) {
      if (results[i]) continue;
      const result = await this.applyReadings(writes[i].deviceId, writes[i].readings);
      results[i] = result;
      requests += result.requests;
    }
    return { results: results as ApplyReadingsResult[], requests };
  }

  /**
   * One bulk read, then one bulk replace conditional on each twin's ETag. `settle` receives the outcome of each
   * entry it could decide; the others are left to the caller. Returns the number of requests made. `bulk` rather
   * than `executeBulkOperations`: the latter waits up to a second to fill partial batches.
   */
  private async bulkApply(
    writes: readonly DeviceReadings[],
    settle: (index: number, result: ApplyReadingsResult) => void,
  ): Promise<number> {
    const reads = await this.container.items.bulk(
      writes.map((w): OperationInput => ({ operationType: 'Read', id: w.deviceId, partitionKey: w.deviceId })),
    );
    const replaces: OperationInput[] = [];
    const pending: { index: number; changed: string[]; refreshed: string[]; superseded: boolean }[] = [];
    reads.forEach((read, index) => {
      if (read.statusCode === 404) return settle(index, { found: false, changed: [], refreshed: [], requests: 0 });
      if (read.statusCode >= 300 || !read.resourceBody) return;
      const current = read.resourceBody as unknown as TwinDocument;
      const outcome = applyReadings(current, writes[index].readings, this.observation, this.graceSeconds);
      const { twin, changed, refreshed, superseded } = outcome;
      if (changed.length === 0) return settle(index, { found: true, changed, refreshed, superseded, requests: 0 });
      pending.push({ index, changed, refreshed, superseded });
      replaces.push({
        operationType: 'Replace',
        id: current.id,
        partitionKey: current.deviceId,
        ifMatch: current._etag,
        resourceBody: twin as unknown as JSONObject,
      });
    });
    if (replaces.length === 0) return 1;
    const replaced = await this.container.items.bulk(replaces);
    replaced.forEach((outcome, k) => {
      const { index, changed, refreshed, superseded } = pending[k];
      if (outcome.statusCode < 300) settle(index, { found: true, changed, refreshed, superseded, requests: 0 });
    });
    return 2;
  }

  /**
   * The one-request path for a single reading: `readingPatch` (shared/twin.ts) as a conditional Cosmos patch. When its
   * conditions do not hold it is `conditionFailed`, and the caller goes the read-replace way.
   */
  private async patchReading(deviceId: string, reading: Reading): Promise<'patched' | 'notFound' | 'conditionFailed'> {
    if (!findProperty(reading.name)) throw new Error(`Reading for unknown property ${reading.name}`);
    const patch = readingPatch(reading);
    // Catalog names are plain identifiers, times and registration ids are ours (ISO, base64url): literals here are
    // safe (the predicate takes none of the caller's text) and Cosmos filter predicates take no parameters.
    const { property, olderThan, registration } = patch.requires;
    const p = `c.deviceProperties.${property}`;
    const time = JSON.stringify(olderThan);
    // The connection's lastActivityTime moves forward only: a twin whose activity is newer (or absent) goes the
    // read-replace way, which takes the later of the two.
    const ownedBy =
      registration === undefined
        ? ''
        : ` AND c.connection.state = "connected" AND c.connection.registrationId = ${JSON.stringify(registration)}`;
    // The line break after `FROM c` is deliberate: the local server lower-cases predicates that start with
    // exactly "from c where" (breaking camelCase paths and ISO times) and takes any other form verbatim.
    const condition =
      `FROM c\nWHERE (IS_DEFINED(${p}) AND ${p}.supported = true AND ${p}.stale = false ` +
      `AND (NOT IS_DEFINED(${p}.lastUpdatedTime) OR ${p}.lastUpdatedTime < ${time}) ` +
      `AND c.connection.lastActivityTime < ${time}${ownedBy})`;
    const operations: PatchOperation[] = [
      ...patch.set.map(({ path, value }): PatchOperation => ({ op: 'set', path, value })),
      { op: 'incr', path: patch.increment, value: 1 },
    ];
    try {
      await this.container.item(deviceId, deviceId).patch({ condition, operations });
      return 'patched';
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return 'notFound';
      if (status === 412) return 'conditionFailed';
      throw error;
    }
  }

  private async replaceIfMatch(twin: TwinDocument, etag: string): Promise<TwinDocument | undefined> {
    try {
      const { resource } = await this.container
        .item(twin.deviceId, twin.deviceId)
        .replace<TwinDocument>(twin, { accessCondition: { type: 'IfMatch', condition: etag } });
      return resource;
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 404) return undefined;
      throw error;
    }
  }

  async query(query: TwinQuery, pageSize: number, continuation?: string): Promise<TwinPage> {
    return this.page(toSql(query), pageSize, continuation);
  }

  async findDue(now: string, pageSize: number, continuation?: string): Promise<TwinPage> {
    return this.page(
      { query: 'SELECT * FROM c WHERE c.nextStaleAt <= @now', parameters: [{ name: '@now', value: now }] },
      pageSize,
      continuation,
    );
  }

  private async page(
    sql: { query: string; parameters: { name: string; value: string | number | boolean }[] },
    pageSize: number,
    continuation?: string,
  ): Promise<TwinPage> {
    const response = await this.container.items
      .query<TwinDocument>(sql, { maxItemCount: pageSize, continuationToken: continuation })
      .fetchNext();
    return { twins: response.resources, continuation: response.continuationToken || undefined };
  }
}
