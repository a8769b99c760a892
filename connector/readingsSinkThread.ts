/**
 * The worker thread behind `ThreadedReadingsSink`: its own Cosmos client and `CosmosTwinStore`, serving
 * `applyReadingsMany` calls posted by the connector's main thread. It is the composition root of its thread (the
 * only place there that creates an SDK client).
 *
 * Protocol: workerData `ReadingsSinkThreadData`; the thread posts `{ ready: true }` or `{ fatal }` once, then answers
 * each `ApplyManyRequest` with an `ApplyManyReply` of the same id.
 */
import { MessagePort, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ObservationDefaults } from '../shared/catalog';
import { CosmosConfig } from '../shared/config';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { ApplyManyResult, DeviceReadings } from '../shared/twinStore';

export interface ReadingsSinkThreadData {
  cosmos: CosmosConfig;
  graceSeconds: number;
  observation: ObservationDefaults;
}

export interface ApplyManyRequest {
  id: number;
  writes: DeviceReadings[];
}

export type ApplyManyReply = { id: number; result: ApplyManyResult } | { id: number; error: string };

export type ThreadStatus = { ready: true } | { fatal: string };

async function serve(port: MessagePort, data: ReadingsSinkThreadData): Promise<void> {
  const client = createCosmosClient(data.cosmos);
  let store: CosmosTwinStore;
  try {
    const container = await openTwinsContainer(client, data.cosmos.databaseName);
    store = new CosmosTwinStore(container, data.graceSeconds, data.observation);
  } catch (error) {
    port.postMessage({ fatal: error instanceof Error ? error.message : String(error) } satisfies ThreadStatus);
    client.dispose();
    return;
  }
  port.on('message', (request: ApplyManyRequest) => {
    store.applyReadingsMany(request.writes).then(
      (result) => port.postMessage({ id: request.id, result } satisfies ApplyManyReply),
      (error: unknown) =>
        port.postMessage({
          id: request.id,
          error: error instanceof Error ? error.message : String(error),
        } satisfies ApplyManyReply),
    );
  });
  port.on('close', () => client.dispose());
  port.postMessage({ ready: true } satisfies ThreadStatus);
}

if (!isMainThread && parentPort) void serve(parentPort, workerData as ReadingsSinkThreadData);
