/**
 * CredentialWriter over Cosmos DB: container `credentials`, partition key `/deviceId`, id = deviceId, one record per
 * device, TTL on (only revoked records carry a `ttl`). Upsert only: the Functions app's role on this container has
 * create/upsert/replace/delete and no read, so the app can never hand a stored key back. The connector reads it
 * (a load at start, then a poll for newer versions) with its own read-only role.
 */
import { Container, CosmosClient, IndexingPolicy } from '@azure/cosmos';
import { CREDENTIALS_CONTAINER, CREDENTIALS_TTL_SECONDS, PARTITION_KEY_PATH } from './constants';
import { CredentialRecord } from './deviceCredentials';

/**
 * Only `version` is indexed: the connector polls for records newer than those it holds
 * (connector/security/cosmosCredentialSource.ts). Must equal the `credentials` container's policy in infra/ (checked
 * in CI).
 */
export const CREDENTIALS_INDEXING_POLICY: IndexingPolicy = {
  indexingMode: 'consistent',
  automatic: true,
  includedPaths: [{ path: '/version/?' }],
  excludedPaths: [{ path: '/*' }, { path: '/"_etag"/?' }],
};

/** Writes credential records; never reads them back. */
export interface CredentialWriter {
  /** Stores this version of the device's record, replacing any earlier one (a revoked record included). */
  write(record: CredentialRecord): Promise<void>;
}

/**
 * Opens (locally: creates) the `credentials` container. In Azure the container exists (Bicep) and
 * `createIfNotExists` only reads its metadata, which both apps' roles allow.
 */
export async function openCredentialsContainer(client: CosmosClient, databaseName: string): Promise<Container> {
  const { database } = await client.databases.createIfNotExists({ id: databaseName });
  const { container } = await database.containers.createIfNotExists({
    id: CREDENTIALS_CONTAINER,
    partitionKey: { paths: [PARTITION_KEY_PATH] },
    indexingPolicy: CREDENTIALS_INDEXING_POLICY,
    defaultTtl: CREDENTIALS_TTL_SECONDS,
  });
  return container;
}

export class CosmosCredentialWriter implements CredentialWriter {
  constructor(private readonly container: Container) {}

  async write(record: CredentialRecord): Promise<void> {
    // An upsert replaces the whole item: an active record written after a revoked one carries no `ttl`, so it
    // never expires. The response body (the record itself) is dropped here.
    await this.container.items.upsert<CredentialRecord>(record);
  }
}
