/**
 * The worker thread behind `ThreadedReadingsSink`: its own Cosmos client and `CosmosTwinStore`, serving
 * `applyReadingsMany` calls posted by the connector's main thread. It is the composition root of its thread (the
 * only place there that creates an SDK client).
 *
 * Protocol: workerData `ReadingsSinkThreadData`; the thread posts `{ ready: true }` or `{ fatal }` once, then answers
 * each `ApplyManyRequest` with an `ApplyManyReply` of the same id.
 */
import { MessagePort, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ObservationAttributes } from '../shared/catalog';
import { CosmosConfig } from '../shared/config';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { ApplyManyResult, DeviceReadings } from '../shared/twinStore';

export interface ReadingsSinkThreadData {
  cosmos: CosmosConfig;
  graceSeconds: number;
}

export interface ApplyManyRequest {
  id: number;
  writes: DeviceReadings[];
  /** pmin/pmax by property name, for properties the twin has no entry for yet. */
  fallback: Record<string, ObservationAttributes>;
}

export type ApplyManyReply = { id: number; result: ApplyManyResult } | { id: number; error: string };

export type ThreadStatus = { ready: true } | { fatal: string };

async function serve(port: MessagePort, data: ReadingsSinkThreadData): Promise<void> {
  const client = createCosmosClient(data.cosmos);
  let store: CosmosTwinStore;
  try {
    store = new CosmosTwinStore(await openTwinsContainer(client, data.cosmos.databaseName), data.graceSeconds);
  } catch (error) {
    port.postMessage({ fatal: error instanceof Error ? error.message : String(error) } satisfies ThreadStatus);
    client.dispose();
    return;
  }
  port.on('message', (request: ApplyManyRequest) => {
    const fallback = (name: string) => {
      const attributes = request.fallback[name];
      if (!attributes) throw new Error(`no observation attributes for ${name}`);
      return attributes;
    };
    store.applyReadingsMany(request.writes, fallback).then(
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
