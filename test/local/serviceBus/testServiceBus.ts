/** Starts the local Service Bus endpoint on a free port with short lock durations, plus real SDK clients. */
import { ServiceBusClient, type ServiceBusClientOptions } from '@azure/service-bus';
import type { EntitiesConfig } from '../../../local/serviceBus/entitiesConfig';
import { startServiceBusEndpoint, type ServiceBusEndpoint } from '../../../local/serviceBus/serviceBusEndpoint';

/** Lock duration of the test queues, ms: short so that expiry tests run in seconds, long enough for a busy CI. */
export const TEST_LOCK_MS = 2000;

export const TEST_ENTITIES: EntitiesConfig = {
  queues: [
    {
      name: 'work',
      properties: { maxDeliveryCount: 3, lockDuration: 'PT2S' },
    },
    {
      name: 'jobs',
      properties: {
        requiresSession: true,
        maxDeliveryCount: 3,
        lockDuration: 'PT2S',
        requiresDuplicateDetection: true,
        duplicateDetectionHistoryTimeWindow: 'PT10M',
        deadLetteringOnMessageExpiration: true,
      },
    },
    {
      name: 'deduplicated',
      properties: { requiresDuplicateDetection: true, duplicateDetectionHistoryTimeWindow: 'PT10M' },
    },
  ],
  topics: [
    {
      name: 'events',
      subscriptions: [
        { name: 'automation', properties: { lockDuration: 'PT2S' } },
        { name: 'audit', properties: { maxDeliveryCount: 2 } },
      ],
    },
    {
      name: 'device-events',
      subscriptions: [{ name: 'per-device', properties: { requiresSession: true } }],
    },
  ],
};

/** Client options for tests that expect errors: no retries, so failures surface at once. */
export const NO_RETRIES: ServiceBusClientOptions = { retryOptions: { maxRetries: 0, timeoutInMs: 10_000 } };

export interface TestServiceBus {
  readonly endpoint: ServiceBusEndpoint;
  readonly logs: string[];
  /** A new SDK client, closed by {@link stop}. */
  client(options?: ServiceBusClientOptions): ServiceBusClient;
  stop(): Promise<void>;
}

export async function startTestServiceBus(entities: EntitiesConfig = TEST_ENTITIES): Promise<TestServiceBus> {
  const logs: string[] = [];
  const endpoint = await startServiceBusEndpoint({ port: 0, entities, log: (line) => logs.push(line) });
  const clients: ServiceBusClient[] = [];
  return {
    endpoint,
    logs,
    client(options) {
      const client = new ServiceBusClient(endpoint.connectionString, options);
      clients.push(client);
      return client;
    },
    async stop() {
      await Promise.all(clients.map((client) => client.close()));
      await endpoint.close();
      const errors = logs.filter((line) => line.startsWith('error'));
      if (errors.length > 0) throw new Error(`the endpoint logged errors:\n${errors.join('\n')}`);
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
