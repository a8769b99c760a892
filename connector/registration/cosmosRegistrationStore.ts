/**
 * RegistrationStore over Cosmos DB: container `registrations`, partition key `/deviceId`, id = deviceId, one record
 * per endpoint, per-item TTL (the registration's remaining lifetime plus a margin). Only `connectorId` is indexed:
 * the one query is a connector's start-up load.
 */
import { Container, CosmosClient, ErrorResponse, IndexingPolicy } from '@azure/cosmos';
import { PARTITION_KEY_PATH, REGISTRATIONS_CONTAINER, REGISTRATIONS_TTL_SECONDS } from '../../shared/constants';
import { Registration } from './registration';
import { RECORD_TTL_MARGIN_SECONDS, RegistrationStore } from './registrationStore';

/** Must equal the `registrations` container's policy in infra/ (checked in CI). */
export const REGISTRATIONS_INDEXING_POLICY: IndexingPolicy = {
  indexingMode: 'consistent',
  automatic: true,
  includedPaths: [{ path: '/connectorId/?' }],
  excludedPaths: [{ path: '/*' }, { path: '/"_etag"/?' }],
};

/** The largest per-item TTL Cosmos accepts, seconds. */
const MAX_COSMOS_TTL_SECONDS = 2_147_483_647;
/** Records per page of the start-up load (larger pages: fewer round trips for 10,000 devices). */
const LOAD_PAGE_SIZE = 1000;

/** The stored shape: the registration's `id` is `registrationId` here, as the record's `id` is the endpoint. */
interface RegistrationRecord extends Omit<Registration, 'id'> {
  /** = endpoint = deviceId. */
  id: string;
  deviceId: string;
  registrationId: string;
  /** Cosmos per-item TTL, seconds from the last write. */
  ttl: number;
  _etag?: string;
}

export async function openRegistrationsContainer(client: CosmosClient, databaseName: string): Promise<Container> {
  const { database } = await client.databases.createIfNotExists({ id: databaseName });
  const { container } = await database.containers.createIfNotExists({
    id: REGISTRATIONS_CONTAINER,
    partitionKey: { paths: [PARTITION_KEY_PATH] },
    indexingPolicy: REGISTRATIONS_INDEXING_POLICY,
    defaultTtl: REGISTRATIONS_TTL_SECONDS,
  });
  return container;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof Error ? ((error as ErrorResponse).code as number | undefined) : undefined;
}

export class CosmosRegistrationStore implements RegistrationStore {
  /** ETag of each record this instance last wrote, so `remove` deletes only that version. */
  private readonly etags = new Map<string, string>();

  constructor(
    private readonly container: Container,
    private readonly now: () => number = Date.now,
  ) {}

  async loadAll(connectorId: string): Promise<Registration[]> {
    const iterator = this.container.items.query<RegistrationRecord>(
      {
        query: 'SELECT * FROM c WHERE c.connectorId = @connectorId',
        parameters: [{ name: '@connectorId', value: connectorId }],
      },
      { maxItemCount: LOAD_PAGE_SIZE },
    );
    const registrations: Registration[] = [];
    while (iterator.hasMoreResults()) {
      const { resources } = await iterator.fetchNext();
      for (const record of resources) {
        if (record._etag) this.etags.set(record.endpoint, record._etag);
        registrations.push(fromRecord(record));
      }
    }
    return registrations;
  }

  async save(registration: Registration): Promise<void> {
    const remainingSeconds = Math.ceil((registration.expiresAt - this.now()) / 1000);
    const { id: registrationId, ...data } = registration;
    const record: RegistrationRecord = {
      ...data,
      id: registration.endpoint,
      deviceId: registration.endpoint,
      registrationId,
      // Cosmos takes a ttl up to 2^31 - 1 s; a lifetime may be up to 2^32 - 1 s.
      ttl: Math.min(MAX_COSMOS_TTL_SECONDS, Math.max(1, remainingSeconds) + RECORD_TTL_MARGIN_SECONDS),
    };
    const { resource } = await this.container.items.upsert<RegistrationRecord>(record);
    if (resource?._etag) this.etags.set(registration.endpoint, resource._etag);
  }

  async remove(endpoint: string, registrationId: string): Promise<void> {
    const etag = this.etags.get(endpoint);
    try {
      if (etag) {
        await this.container.item(endpoint, endpoint).delete({ accessCondition: { type: 'IfMatch', condition: etag } });
      } else {
        // Not written by this instance since it started: delete only after checking whose record it is.
        const { resource } = await this.container.item(endpoint, endpoint).read<RegistrationRecord>();
        if (!resource || resource.registrationId !== registrationId) return;
        await this.container
          .item(endpoint, endpoint)
          .delete({ accessCondition: { type: 'IfMatch', condition: resource._etag as string } });
      }
    } catch (error) {
      const status = statusOf(error);
      // 404: already gone; 412: replaced by a newer registration since (this or another instance).
      if (status !== 404 && status !== 412) throw error;
    } finally {
      if (this.etags.get(endpoint) === etag) this.etags.delete(endpoint);
    }
  }
}

/**
 * The registration inside a record: every registration field kept (the DTLS identity that owns it above all), the
 * record's own fields and Cosmos's system fields dropped.
 */
function fromRecord(record: RegistrationRecord): Registration {
  const { registrationId, deviceId, ttl, id, ...rest } = record;
  void deviceId;
  void ttl;
  void id;
  const registration: Record<string, unknown> = { ...rest, id: registrationId };
  for (const key of Object.keys(registration)) if (key.startsWith('_')) delete registration[key];
  return registration as unknown as Registration;
}
