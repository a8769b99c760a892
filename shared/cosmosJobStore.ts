/**
 * JobStore over Cosmos DB: container `jobs`, partition key `/deviceId`, id = jobId, TTL on.
 *
 * Finding a job from its id alone (`GET /api/jobs/{jobId}`) is a cross-partition query on `id`. Each physical
 * partition answers it from its index (no scan), so it costs one small request per physical partition; the
 * container stays small because every record expires `JOBS_TTL_SECONDS` after its last write. Everything on
 * the job's own path (the job function, listing a device's jobs) is a point read or a single-partition query.
 */
import { Container, CosmosClient, ErrorResponse, IndexingPolicy } from '@azure/cosmos';
import { JOBS_CONTAINER, JOBS_TTL_SECONDS, PARTITION_KEY_PATH } from './constants';
import { JobDocument } from './job';
import { JobPage, JobStore } from './jobStore';

/**
 * Only what the app queries is indexed: the device, the creation time (newest first, id breaks ties), the status,
 * the send time (the unsent-job sweep: `status = 'queued' AND NOT IS_DEFINED(sentTime)`) and the expiry of jobs
 * waiting for a sleeping device (`status = 'waiting' AND expiresAt <= now`).
 * Must equal the `jobs` container's policy in infra/.
 */
export const JOBS_INDEXING_POLICY: IndexingPolicy = {
  indexingMode: 'consistent',
  automatic: true,
  includedPaths: [
    { path: '/deviceId/?' },
    { path: '/createdTime/?' },
    { path: '/status/?' },
    { path: '/sentTime/?' },
    { path: '/expiresAt/?' },
  ],
  excludedPaths: [{ path: '/*' }, { path: '/"_etag"/?' }],
  compositeIndexes: [
    [
      { path: '/createdTime', order: 'descending' },
      { path: '/id', order: 'descending' },
    ],
  ],
};

/** Lost ETag races retried before giving up (each retry re-reads the record). */
const MAX_RACE_RETRIES = 20;

export async function openJobsContainer(client: CosmosClient, databaseName: string): Promise<Container> {
  const { database } = await client.databases.createIfNotExists({ id: databaseName });
  const { container } = await database.containers.createIfNotExists({
    id: JOBS_CONTAINER,
    partitionKey: { paths: [PARTITION_KEY_PATH] },
    indexingPolicy: JOBS_INDEXING_POLICY,
    defaultTtl: JOBS_TTL_SECONDS,
  });
  return container;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof Error ? ((error as ErrorResponse).code as number | undefined) : undefined;
}

export class CosmosJobStore implements JobStore {
  constructor(private readonly container: Container) {}

  async create(job: JobDocument): Promise<{ job: JobDocument; created: boolean }> {
    try {
      const { resource } = await this.container.items.create<JobDocument>(job);
      return { job: resource as JobDocument, created: true };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
      const existing = await this.read(job.deviceId, job.id);
      if (!existing) return this.create(job);
      return { job: existing, created: false };
    }
  }

  async get(jobId: string): Promise<JobDocument | undefined> {
    const { resources } = await this.container.items
      .query<JobDocument>({ query: 'SELECT * FROM c WHERE c.id = @id', parameters: [{ name: '@id', value: jobId }] })
      .fetchAll();
    return resources[0];
  }

  async read(deviceId: string, jobId: string): Promise<JobDocument | undefined> {
    try {
      const { resource } = await this.container.item(jobId, deviceId).read<JobDocument>();
      return resource;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async update(
    deviceId: string,
    jobId: string,
    mutate: (job: JobDocument) => JobDocument | undefined,
  ): Promise<JobDocument | undefined> {
    for (let attempt = 0; attempt < MAX_RACE_RETRIES; attempt++) {
      const current = await this.read(deviceId, jobId);
      if (!current) return undefined;
      const next = mutate(current);
      if (!next) return current;
      try {
        const { resource } = await this.container
          .item(jobId, deviceId)
          .replace<JobDocument>(next, { accessCondition: { type: 'IfMatch', condition: current._etag as string } });
        return resource;
      } catch (error) {
        const status = statusOf(error);
        if (status === 404) return undefined;
        if (status !== 412) throw error;
      }
    }
    throw new Error(`Job ${jobId}: gave up after ${MAX_RACE_RETRIES} lost ETag races`);
  }

  async listByDevice(deviceId: string, pageSize: number, continuation?: string): Promise<JobPage> {
    const response = await this.container.items
      .query<JobDocument>(
        {
          query: 'SELECT * FROM c WHERE c.deviceId = @deviceId ORDER BY c.createdTime DESC, c.id DESC',
          parameters: [{ name: '@deviceId', value: deviceId }],
        },
        { partitionKey: deviceId, maxItemCount: pageSize, continuationToken: continuation },
      )
      .fetchNext();
    return { jobs: response.resources, continuation: response.continuationToken || undefined };
  }

  async findUnsent(createdBefore: string, pageSize: number, continuation?: string): Promise<JobPage> {
    const response = await this.container.items
      .query<JobDocument>(
        {
          query:
            "SELECT * FROM c WHERE c.status = 'queued' AND NOT IS_DEFINED(c.sentTime) AND c.createdTime <= @before",
          parameters: [{ name: '@before', value: createdBefore }],
        },
        { maxItemCount: pageSize, continuationToken: continuation },
      )
      .fetchNext();
    return { jobs: response.resources, continuation: response.continuationToken || undefined };
  }

  async listWaiting(deviceId: string, limit = 100): Promise<JobDocument[]> {
    const response = await this.container.items
      .query<JobDocument>(
        {
          query: "SELECT * FROM c WHERE c.deviceId = @deviceId AND c.status = 'waiting'",
          parameters: [{ name: '@deviceId', value: deviceId }],
        },
        { partitionKey: deviceId },
      )
      .fetchAll();
    // Ordered here: a device has few waiting jobs, and this needs no composite index on (status, createdTime).
    return response.resources
      .sort((a, b) => (a.createdTime === b.createdTime ? cmp(a.id, b.id) : cmp(a.createdTime, b.createdTime)))
      .slice(0, limit);
  }

  async findExpiredWaiting(expiredBy: string, pageSize: number, continuation?: string): Promise<JobPage> {
    const response = await this.container.items
      .query<JobDocument>(
        {
          query: "SELECT * FROM c WHERE c.status = 'waiting' AND c.expiresAt <= @expiredBy",
          parameters: [{ name: '@expiredBy', value: expiredBy }],
        },
        { maxItemCount: pageSize, continuationToken: continuation },
      )
      .fetchNext();
    return { jobs: response.resources, continuation: response.continuationToken || undefined };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
