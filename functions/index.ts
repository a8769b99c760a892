/**
 * The Functions app's composition root: app setup and the module-level lazy clients every function shares.
 * Each function lives in its own file and registers itself at its bottom; the host loads them through the
 * `main` glob in package.json.
 */
import { app } from '@azure/functions';
import { loadCosmosConfig, loadStalenessConfig } from '../shared/config';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { TwinStore } from '../shared/twinStore';

app.setup({ enableHttpStream: false });

function lazy<T>(create: () => Promise<T>): () => Promise<T> {
  let instance: Promise<T> | undefined;
  return () => {
    instance ??= create().catch((error: unknown) => {
      instance = undefined; // let the next invocation try again (for example when Cosmos was not up yet)
      throw error;
    });
    return instance;
  };
}

const cosmosClient = lazy(async () => createCosmosClient(loadCosmosConfig(process.env)));

export const twinStore = lazy<TwinStore>(async () => {
  const config = loadCosmosConfig(process.env);
  const container = await openTwinsContainer(await cosmosClient(), config.databaseName);
  return new CosmosTwinStore(container, loadStalenessConfig(process.env).graceSeconds);
});

/** The app's clock; one place, so nothing reads the time its own way. */
export function now(): string {
  return new Date().toISOString();
}
