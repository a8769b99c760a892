/**
 * Builds the one long-lived ServiceBusClient of a composition root (Functions app or connector).
 * Locally: the connection string of the project's endpoint (`UseDevelopmentEmulator=true`). In Azure: the
 * namespace and the managed identity, so no key is stored anywhere.
 */
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { ServiceBusClient, ServiceBusClientOptions } from '@azure/service-bus';
import WebSocket from 'ws';
import { ServiceBusConfig, ServiceBusTransport } from './config';

/**
 * `transport` `amqpWebSockets` tunnels AMQP through TLS WebSockets on port 443 (Node 20 has no WebSocket of its own,
 * so `ws` provides it); `amqp` (default) is AMQP over TLS on 5671.
 */
export function createServiceBusClient(
  config: ServiceBusConfig,
  transport: ServiceBusTransport = 'amqp',
): ServiceBusClient {
  const options: ServiceBusClientOptions =
    transport === 'amqpWebSockets' ? { webSocketOptions: { webSocket: WebSocket } } : {};
  if (config.connectionString) return new ServiceBusClient(config.connectionString, options);
  if (!config.fullyQualifiedNamespace) {
    throw new Error('Service Bus needs a connection string or a fully qualified namespace');
  }
  const credential = config.managedIdentityClientId
    ? new ManagedIdentityCredential({ clientId: config.managedIdentityClientId })
    : new DefaultAzureCredential();
  return new ServiceBusClient(config.fullyQualifiedNamespace, credential, options);
}
