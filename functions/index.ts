/**
 * The Functions app's composition root: app setup and the module-level lazy clients every function shares.
 * Each function lives in its own file and registers itself at its bottom; the host loads them through the
 * `main` glob in package.json.
 */
import { app } from '@azure/functions';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  loadConnectorApiKey,
  loadCosmosConfig,
  loadJobsConfig,
  loadObservationDefaults,
  loadServiceBusConfig,
  loadStalenessConfig,
} from '../shared/config';
import { ConnectorClient } from '../shared/connectorClient';
import { EVENTS_TOPIC, JOBS_QUEUE } from '../shared/constants';
import { createCosmosClient } from '../shared/cosmosClient';
import { CosmosCredentialWriter, openCredentialsContainer } from '../shared/cosmosCredentialWriter';
import { CosmosJobStore, openJobsContainer } from '../shared/cosmosJobStore';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { JobDeepReader } from '../shared/jobDeepReader';
import { SubmitJobDependencies, submitJob } from '../shared/jobOperations';
import { JobQueue } from '../shared/jobQueue';
import { JobStore } from '../shared/jobStore';
import { DeviceJobDependencies } from '../shared/runDeviceJob';
import { ServiceBusJobQueue } from '../shared/serviceBusJobQueue';
import { DeepReader } from '../shared/readThroughDeviceProperty';
import { createServiceBusClient } from '../shared/serviceBusClient';
import { EventPublisher, ServiceBusEventPublisher } from '../shared/twinEvents';
import { GENERATED_PSK_BYTES } from '../shared/deviceCredentials';
import { CredentialDependencies } from '../shared/twinOperations';
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
  const { graceSeconds } = loadStalenessConfig(process.env);
  return new CosmosTwinStore(container, graceSeconds, loadObservationDefaults(process.env));
});

/**
 * Device credentials: written (upsert) to the `credentials` container, never read back; keys are generated here
 * from the platform CSPRNG.
 */
export const credentialDependencies = lazy<CredentialDependencies>(async () => {
  const config = loadCosmosConfig(process.env);
  const container = await openCredentialsContainer(await cosmosClient(), config.databaseName);
  return {
    credentials: new CosmosCredentialWriter(container),
    now: () => Date.now(),
    generateKey: () => randomBytes(GENERATED_PSK_BYTES),
  };
});

/** The app's one Service Bus client (job queue, events topic). */
export const serviceBusClient = lazy(async () => createServiceBusClient(loadServiceBusConfig(process.env)));

/** Twin events to the `twin-events` topic, through one long-lived sender. */
export const eventPublisher = lazy<EventPublisher>(
  async () => new ServiceBusEventPublisher((await serviceBusClient()).createSender(EVENTS_TOPIC)),
);

export const jobStore = lazy<JobStore>(async () => {
  const config = loadCosmosConfig(process.env);
  return new CosmosJobStore(await openJobsContainer(await cosmosClient(), config.databaseName));
});

/** Jobs to the `device-jobs` queue, through one long-lived sender. */
export const jobQueue = lazy<JobQueue>(
  async () => new ServiceBusJobQueue((await serviceBusClient()).createSender(JOBS_QUEUE)),
);

/** The client of the connectors' internal API (each call names the instance that holds the device). */
export const connectorClient = lazy(async () => new ConnectorClient(loadConnectorApiKey(process.env)));

export const submitJobDependencies = lazy<SubmitJobDependencies>(async () => ({
  jobs: await jobStore(),
  twins: await twinStore(),
  queue: await jobQueue(),
  now,
  newJobId: randomUUID,
}));

export const deviceJobDependencies = lazy<DeviceJobDependencies>(async () => {
  const jobs = loadJobsConfig(process.env);
  return {
    jobs: await jobStore(),
    twins: await twinStore(),
    connector: await connectorClient(),
    retry: {
      maxDeliveryCount: jobs.maxDeliveryCount,
      firstDelayMs: jobs.retryDelaySeconds * 1000,
      maxDelayMs: jobs.maxRetryDelaySeconds * 1000,
    },
    deviceTimeoutMs: jobs.deviceTimeoutSeconds * 1000,
    now,
    sleep: (ms) => sleep(ms),
    events: await eventPublisher(),
    warn: (message) => console.warn(message),
    queue: await jobQueue(),
    maxWaitForDeviceSeconds: jobs.maxWaitForDeviceSeconds,
  };
});

/** Deep reads for the max-age read-through (getDeviceProperty): a read job, polled until it ends. */
export const deepReader = lazy<DeepReader | undefined>(async () => {
  const dependencies = await submitJobDependencies();
  return new JobDeepReader({
    submit: async (request) => (await submitJob(dependencies, request)).job,
    jobs: dependencies.jobs,
  });
});

/** The app's clock; one place, so nothing reads the time its own way. */
export function now(): string {
  return new Date().toISOString();
}
