/** An in-process local Cosmos server for a test file, with a client that trusts its certificate. */
import { CosmosClient } from '@azure/cosmos';
import path from 'node:path';
import { EMULATOR_KEY, LocalCosmosServer, startCosmosServer } from '../../local/cosmosServer';
import { createCosmosClient } from '../../shared/cosmosClient';

export const CERT_DIR = path.join(__dirname, '..', '..', '.local', 'certs');

export interface TestCosmos {
  server: LocalCosmosServer;
  client: CosmosClient;
  close(): Promise<void>;
}

export async function startTestCosmos(): Promise<TestCosmos> {
  const server = await startCosmosServer({ port: 0, certDir: CERT_DIR });
  const client = createCosmosClient({
    endpoint: server.endpoint,
    databaseName: 'test',
    key: EMULATOR_KEY,
    trustedCertificatePath: server.certPath,
  });
  return {
    server,
    client,
    close: async () => {
      client.dispose();
      await server.close();
    },
  };
}
