/**
 * The connector's composition root: configuration from the environment, the Cosmos client, twin, registration and
 * job stores, the Service Bus senders of twin events and of woken queue-mode devices' jobs, the connector, and signal handling (SIGTERM/SIGINT: graceful stop, then exit).
 */
import { ConfigError, ConnectorConfig, loadConnectorConfig } from '../shared/config';
import { EVENTS_TOPIC, JOBS_QUEUE } from '../shared/constants';
import { createCosmosClient } from '../shared/cosmosClient';
import { openCredentialsContainer } from '../shared/cosmosCredentialWriter';
import { CosmosJobStore, openJobsContainer } from '../shared/cosmosJobStore';
import { CosmosTwinStore, openTwinsContainer } from '../shared/cosmosTwinStore';
import { createServiceBusClient } from '../shared/serviceBusClient';
import { ServiceBusJobQueue } from '../shared/serviceBusJobQueue';
import { ServiceBusEventPublisher } from '../shared/twinEvents';
import { resumeWaitingJobs } from '../shared/waitingJobs';
import { Logger, jsonLineLogger } from './logger';
import { CosmosRegistrationStore, openRegistrationsContainer } from './registration/cosmosRegistrationStore';
import { CosmosCredentialSource } from './security/cosmosCredentialSource';
import { startConnector } from './startConnector';
import { ThreadedReadingsSink } from './threadedReadingsSink';

/** How often the connector looks for new, rotated and revoked device credentials, ms. */
const CREDENTIALS_POLL_MS = 1_000;
/** How long a graceful stop may take before the process exits anyway (container runtimes allow ~30 s). */
const SHUTDOWN_BUDGET_MS = 25_000;

async function main(): Promise<void> {
  const log = jsonLineLogger('connector');
  const config = loadConfigOrExit(log);
  const cosmos = createCosmosClient(config.cosmos);
  const container = await openTwinsContainer(cosmos, config.cosmos.databaseName);
  const store = new CosmosTwinStore(container, config.stalenessGraceSeconds, config.observation);
  const registrations = new CosmosRegistrationStore(
    await openRegistrationsContainer(cosmos, config.cosmos.databaseName),
  );
  const credentials = new CosmosCredentialSource(await openCredentialsContainer(cosmos, config.cosmos.databaseName), {
    pollMs: CREDENTIALS_POLL_MS,
    log,
  });
  const readingsSink = await ThreadedReadingsSink.start({
    cosmos: config.cosmos,
    graceSeconds: config.stalenessGraceSeconds,
    observation: config.observation,
    // Without its writer the connector cannot keep twins in sync: exit, so the container is restarted.
    onUnexpectedExit: (exitCode) => {
      log.error('the readings thread stopped; exiting', { exitCode });
      process.exit(1);
    },
  });
  const serviceBus = createServiceBusClient(config.serviceBus, config.serviceBusTransport);
  const events = new ServiceBusEventPublisher(serviceBus.createSender(EVENTS_TOPIC));
  // Queue mode: jobs parked for a sleeping device go back on `device-jobs` when it wakes (shared/waitingJobs.ts).
  const jobs = new CosmosJobStore(await openJobsContainer(cosmos, config.cosmos.databaseName));
  const jobQueue = new ServiceBusJobQueue(serviceBus.createSender(JOBS_QUEUE));
  const onDeviceAwake = (deviceId: string) => {
    resumeWaitingJobs(jobs, jobQueue, deviceId).then(
      ({ resumed, failure }) => {
        if (resumed.length > 0) log.info('waiting jobs resumed', { deviceId, jobs: resumed.join(',') });
        if (failure) log.warn('waiting job not resumed; it waits for the next wake', { deviceId, ...failure });
      },
      (error: unknown) => log.warn('waiting jobs not resumed', { deviceId, error: String(error) }),
    );
  };
  const connector = await startConnector({
    store,
    registrations,
    credentials,
    readingsSink,
    events,
    config,
    log,
    onDeviceAwake,
  });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    const forced = setTimeout(() => {
      log.error('graceful stop took too long; exiting', { budgetMs: SHUTDOWN_BUDGET_MS });
      process.exit(1);
    }, SHUTDOWN_BUDGET_MS);
    forced.unref();
    connector
      .close()
      .then(() => readingsSink.close())
      .then(() => serviceBus.close())
      .then(() => cosmos.dispose())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          log.error('error while stopping', { error: String(error) });
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** The configuration, or exit code 2 with a line naming the missing or bad setting. */
function loadConfigOrExit(log: Logger): ConnectorConfig {
  try {
    return loadConnectorConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log.error(error.message);
    process.exit(2);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `connector failed to start: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`,
  );
  process.exit(1);
});
