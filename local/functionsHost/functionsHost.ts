import path from 'node:path';
import { systemClock, type Clock } from './clock';
import { FunctionInvoker } from './functionInvoker';
import { FunctionsCoreModule, type RegisteredFunction } from './functionsCoreModule';
import { createHostLogger, describeError, type HostLogger } from './hostLogger';
import {
  loadLocalSettings,
  readHostSettings,
  REQUEST_BODY_LIMIT_SETTING,
  resolveAppSettingReferences,
  type HostSettings,
} from './hostSettings';
import { DEFAULT_MAX_REQUEST_BODY_BYTES, HttpTrigger } from './http/httpTrigger';
import { loadFunctionApp } from './loadFunctionApp';
import { resolveServiceBusTrigger, ServiceBusTrigger } from './serviceBus/serviceBusTrigger';
import { BlobLeaseLock } from './timer/blobLeaseLock';
import { BlobScheduleStatusStore } from './timer/blobScheduleStatusStore';
import { parseTimerSchedule, shortestInterval } from './timer/timerSchedule';
import { TimerTrigger } from './timer/timerTrigger';
import { createWebJobsHostsContainer } from './timer/webJobsStorage';
import type { TriggerListener } from './triggerListener';

/** The port `func start` uses. */
export const DEFAULT_FUNCTIONS_PORT = 7071;
/** The app setting that names the host id (lock and timer-status blob names); default: from package.json `name`. */
export const HOST_ID_SETTING = 'AzureFunctionsWebHost__hostid';
/** The runtime monitors (persists) timer schedules whose occurrences are at least this far apart. */
const MONITORED_SCHEDULE_MIN_INTERVAL_MS = 60_000;
/** Host ids are at most 32 characters, lower case letters, digits and dashes. */
const HOST_ID_MAX_LENGTH = 32;

export interface FunctionsHostOptions {
  /** The app folder: package.json (`main` = compiled function files), host.json, optional local.settings.json. */
  appRoot: string;
  /** HTTP port; 0 picks a free one. Default 7071. */
  port?: number;
  /** HTTP listen address. Default 127.0.0.1. */
  hostname?: string;
  /** App settings, put into `process.env` before the app loads (they win over local.settings.json). */
  env?: Record<string, string>;
  /** Where log lines go. Default: stdout. */
  log?: (line: string) => void;
  /** Request body limit in bytes. Default: app setting FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, else 100 MB as on Azure. */
  maxRequestBodyBytes?: number;
  /** Log one line per finished invocation. Default true. */
  logInvocations?: boolean;
  /** The timer trigger's clock. Default: the system clock. */
  clock?: Clock;
}

export interface FunctionsHost {
  /** The HTTP port actually bound. */
  readonly port: number;
  readonly functionNames: readonly string[];
  /** Stops taking work, drains invocations in flight, stops receivers and timers, releases leases. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the local Functions host for one v4 programming-model app in this process: installs
 * `@azure/functions-core`, loads the app through the unmodified `@azure/functions`, and runs its HTTP, timer and
 * Service Bus triggers. One app per process (the library keeps global state).
 */
export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const appRoot = path.resolve(options.appRoot);
  const writeLine = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  Object.assign(process.env, options.env ?? {});
  await loadLocalSettings(appRoot, process.env);
  const settings = await readHostSettings(appRoot);
  const logger = createHostLogger(writeLine, settings.logLevel);

  const core = new FunctionsCoreModule(logger);
  core.install();
  const app = await loadFunctionApp(appRoot, core, logger);
  const hostId = resolveHostId(process.env, app.name);
  const invoker = new FunctionInvoker(core, logger, { logInvocations: options.logInvocations ?? true });

  const httpFunctions: RegisteredFunction[] = [];
  const listeners: TriggerListener[] = [];
  const buildTimer = timerFactory(settings, invoker, logger, hostId, options.clock ?? systemClock);
  for (const fn of app.functions) {
    warnAboutUnsupportedBindings(fn, logger);
    switch (fn.triggerType.toLowerCase()) {
      case 'httptrigger':
        httpFunctions.push(fn);
        break;
      case 'timertrigger':
        listeners.push(buildTimer(fn));
        break;
      case 'servicebustrigger':
        listeners.push(
          new ServiceBusTrigger(fn, resolveServiceBusTrigger(fn, process.env), invoker, settings.serviceBus, logger),
        );
        break;
      default:
        logger.warn(
          `Function '${fn.name}' uses a ${fn.triggerType}, which the local host does not run; it is skipped.`,
        );
    }
  }
  const http = new HttpTrigger(
    httpFunctions,
    invoker,
    {
      hostname: options.hostname ?? '127.0.0.1',
      port: options.port ?? DEFAULT_FUNCTIONS_PORT,
      routePrefix: settings.routePrefix,
      maxRequestBodyBytes: options.maxRequestBodyBytes ?? requestBodyLimit(process.env),
      hostId,
    },
    logger,
  );
  listeners.unshift(http);

  const started: TriggerListener[] = [];
  try {
    for (const listener of listeners) {
      await listener.start();
      started.push(listener);
    }
  } catch (error) {
    await Promise.allSettled(started.map((listener) => listener.close()));
    throw error;
  }

  logger.info(`Functions host for '${app.name}' (host id ${hostId}) listening on http://${http.describeAddress()}`);
  for (const line of listeners.flatMap((listener) => listener.describe())) {
    logger.info(`  ${line}`);
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await Promise.allSettled(listeners.map((listener) => listener.stop()));
      await invoker.drain();
      const results = await Promise.allSettled(listeners.map((listener) => listener.close()));
      for (const result of results) {
        if (result.status === 'rejected') {
          logger.warn(`Stopping a trigger failed: ${describeError(result.reason)}`);
        }
      }
      try {
        await core.runHooks('appTerminate', { hookData: core.appLevelHookData, appHookData: core.appHookData });
      } catch (error) {
        logger.warn(`An appTerminate hook threw: ${describeError(error)}`);
      }
      logger.info('Functions host stopped.');
    })();
    return closing;
  };

  return { port: http.port, functionNames: app.functions.map((fn) => fn.name), close };
}

function timerFactory(
  settings: HostSettings,
  invoker: FunctionInvoker,
  logger: HostLogger,
  hostId: string,
  clock: Clock,
): (fn: RegisteredFunction) => TimerTrigger {
  let container: ReturnType<typeof createWebJobsHostsContainer> | undefined;
  return (fn) => {
    const where = `Timer function '${fn.name}'`;
    if (typeof fn.trigger.schedule !== 'string' || fn.trigger.schedule.trim() === '') {
      throw new Error(`${where} has no schedule.`);
    }
    const expression = resolveAppSettingReferences(fn.trigger.schedule, process.env, `${where} (schedule)`);
    let schedule;
    try {
      schedule = parseTimerSchedule(expression);
    } catch (error) {
      throw new Error(`${where}: ${(error as Error).message}`);
    }
    container ??= createWebJobsHostsContainer(process.env, where);
    const functionId = `Host.Functions.${fn.name}`;
    const lock = new BlobLeaseLock(
      container,
      `locks/${hostId}/${functionId}.Listener`,
      settings.singleton.listenerLockPeriodMs / 1000,
    );
    const statusStore = new BlobScheduleStatusStore(container, `timers/${hostId}/${functionId}/status`);
    const useMonitor =
      typeof fn.trigger.useMonitor === 'boolean'
        ? fn.trigger.useMonitor
        : shortestInterval(schedule, clock.now()) >= MONITORED_SCHEDULE_MIN_INTERVAL_MS;
    return new TimerTrigger(
      {
        functionName: fn.name,
        schedule,
        runOnStartup: fn.trigger.runOnStartup === true,
        useMonitor,
        lockRenewIntervalMs: (lock.leaseSeconds * 1000) / 2,
        lockPollIntervalMs: settings.singleton.listenerLockRecoveryPollingIntervalMs,
      },
      {
        clock,
        lock,
        statusStore,
        logger,
        invoke: (timerInfo) =>
          invoker.invoke(fn, {
            inputData: [{ name: fn.triggerBindingName, data: { json: JSON.stringify(timerInfo) } }],
          }),
      },
    );
  };
}

/**
 * Bindings other than the trigger and an HTTP function's HTTP output, and retry policies, are not implemented by the
 * local host: say so at start rather than fail silently at run time.
 */
function warnAboutUnsupportedBindings(fn: RegisteredFunction, logger: HostLogger): void {
  if (fn.metadata.retryOptions) {
    logger.warn(`Function '${fn.name}': its retry policy is not applied by the local host.`);
  }
  for (const [name, binding] of Object.entries(fn.metadata.bindings)) {
    if (name === fn.triggerBindingName || String(binding.type).toLowerCase() === 'http') {
      continue;
    }
    logger.warn(
      `Function '${fn.name}': ${binding.direction ?? ''} binding '${name}' (${binding.type}) is not supported by the ` +
        `local host; ${binding.direction === 'out' ? 'its output is dropped' : 'its input is undefined'}.`,
    );
  }
}

function resolveHostId(env: NodeJS.ProcessEnv, appName: string): string {
  const configured = env[HOST_ID_SETTING];
  const source = configured && configured.trim() !== '' ? configured : appName;
  const id = source
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, HOST_ID_MAX_LENGTH)
    .replace(/-+$/g, '');
  return id === '' ? 'functions-host' : id;
}

function requestBodyLimit(env: NodeJS.ProcessEnv): number {
  const configured = env[REQUEST_BODY_LIMIT_SETTING];
  if (configured === undefined || configured.trim() === '') {
    return DEFAULT_MAX_REQUEST_BODY_BYTES;
  }
  const limit = Number(configured);
  if (!Number.isSafeInteger(limit) || limit <= 0) {
    throw new Error(
      `App setting ${REQUEST_BODY_LIMIT_SETTING} must be a positive number of bytes, got "${configured}".`,
    );
  }
  return limit;
}
