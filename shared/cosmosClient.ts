/**
 * Builds the one long-lived CosmosClient of a composition root (Functions app or connector).
 * Locally: the emulator key and, for a self-signed local server, an `https.Agent` that trusts exactly that
 * certificate (TLS verification stays on for everything else). In Azure: the managed identity.
 */
import { CosmosClient, CosmosClientOptions } from '@azure/cosmos';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { CosmosConfig } from './config';

export function createCosmosClient(config: CosmosConfig): CosmosClient {
  const options: CosmosClientOptions = {
    endpoint: config.endpoint,
    connectionPolicy: { enableEndpointDiscovery: false },
    // 429s are retried by the SDK's throttling policy; these bound how long a caller may wait in total.
    // (The SDK applies them per request.)
  };
  if (config.key) {
    options.key = config.key;
  } else {
    options.aadCredentials = config.managedIdentityClientId
      ? new ManagedIdentityCredential({ clientId: config.managedIdentityClientId })
      : new DefaultAzureCredential();
  }
  if (config.trustedCertificatePath && config.endpoint.startsWith('https:')) {
    options.agent = new https.Agent({
      ca: readFileSync(config.trustedCertificatePath),
      keepAlive: true,
      maxSockets: 64,
    });
  }
  return new CosmosClient(options);
}
