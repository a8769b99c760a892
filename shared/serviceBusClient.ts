/**
 * Builds the one long-lived ServiceBusClient of a composition root (Functions app or connector).
 * Locally: the connection string of the project's endpoint (`UseDevelopmentEmulator=true`). In Azure: the
 * namespace and the managed identity, so no key is stored anywhere.
 */
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusConfig } from './config';

export function createServiceBusClient(config: ServiceBusConfig): ServiceBusClient {
  if (config.connectionString) return new ServiceBusClient(config.connectionString);
  if (!config.fullyQualifiedNamespace) {
    throw new Error('Service Bus needs a connection string or a fully qualified namespace');
  }
  const credential = config.managedIdentityClientId
    ? new ManagedIdentityCredential({ clientId: config.managedIdentityClientId })
    : new DefaultAzureCredential();
  return new ServiceBusClient(config.fullyQualifiedNamespace, credential);
}
