import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';

/** The app setting that holds the Functions runtime's storage account connection. */
export const WEB_JOBS_STORAGE_SETTING = 'AzureWebJobsStorage';
/** The container where the runtime keeps locks and timer status. */
export const WEB_JOBS_HOSTS_CONTAINER = 'azure-webjobs-hosts';

/** Storage calls give up after this many tries and short delays, so a missing Azurite shows up in the log within seconds. */
const STORAGE_RETRY_OPTIONS = { maxTries: 3, tryTimeoutInMs: 10_000, retryDelayInMs: 200, maxRetryDelayInMs: 1_000 };

/**
 * The `azure-webjobs-hosts` container of the AzureWebJobsStorage account (a connection string; locally Azurite, e.g.
 * `UseDevelopmentStorage=true`). Identity-based settings (`AzureWebJobsStorage__accountName`, `__blobServiceUri`) are
 * not supported by the local host; the error says so.
 */
export function createWebJobsHostsContainer(env: NodeJS.ProcessEnv, neededBy: string): ContainerClient {
  const connectionString = env[WEB_JOBS_STORAGE_SETTING];
  if (!connectionString) {
    const identityBased = Object.keys(env).some((name) => name.startsWith(`${WEB_JOBS_STORAGE_SETTING}__`));
    throw new Error(
      identityBased
        ? `${neededBy} needs ${WEB_JOBS_STORAGE_SETTING} as a connection string; identity-based storage settings ` +
            `(${WEB_JOBS_STORAGE_SETTING}__*) are not supported by the local host.`
        : `${neededBy} needs the app setting ${WEB_JOBS_STORAGE_SETTING} (a storage connection string; for Azurite: ` +
            `UseDevelopmentStorage=true) for its singleton lock and schedule status.`,
    );
  }
  let service: BlobServiceClient;
  try {
    service = BlobServiceClient.fromConnectionString(connectionString, {
      retryOptions: STORAGE_RETRY_OPTIONS,
    });
  } catch (error) {
    throw new Error(
      `${WEB_JOBS_STORAGE_SETTING} is not a valid storage connection string: ${(error as Error).message}`,
    );
  }
  return service.getContainerClient(WEB_JOBS_HOSTS_CONTAINER);
}
