import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RpcLogLevel } from './functionsCoreTypes';
import { parseHostJsonLogLevel } from './hostLogger';

/** The app setting that overrides the request body limit (bytes), as on Azure Functions for Linux. */
export const REQUEST_BODY_LIMIT_SETTING = 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT';

/** The Functions host's HTTP route prefix when host.json does not set `extensions.http.routePrefix`. */
export const DEFAULT_ROUTE_PREFIX = 'api';

/**
 * Service Bus trigger settings from host.json `extensions.serviceBus`, with the Functions extension's defaults.
 * Durations are in milliseconds.
 */
export interface ServiceBusHostSettings {
  /** Sessions handled at once per function (extension default 8). */
  maxConcurrentSessions: number;
  /** Messages handled at once per non-session function (extension default 16 per CPU core). */
  maxConcurrentCalls: number;
  /** How long a session receiver waits for its next message before it releases the session (default 60 s). */
  sessionIdleTimeoutMs: number;
  /** How long message and session locks are renewed while a handler runs (default 5 min). */
  maxAutoLockRenewalDurationMs: number;
  /** Complete on success / abandon on failure (default true). */
  autoCompleteMessages: boolean;
}

/** Singleton lock settings from host.json `singleton`, used for the timer listener lock. Milliseconds. */
export interface SingletonHostSettings {
  /** Lease period of the listener lock (runtime default 60 s; a blob lease allows 15 to 60 s). */
  listenerLockPeriodMs: number;
  /** How often a host without the listener lock tries to take it (runtime default 60 s). */
  listenerLockRecoveryPollingIntervalMs: number;
}

export interface HostSettings {
  routePrefix: string;
  serviceBus: ServiceBusHostSettings;
  singleton: SingletonHostSettings;
  /** host.json `logging.logLevel.default`. */
  logLevel: RpcLogLevel;
}

const SERVICE_BUS_DEFAULTS: ServiceBusHostSettings = {
  maxConcurrentSessions: 8,
  maxConcurrentCalls: 16 * Math.max(1, os.cpus().length),
  sessionIdleTimeoutMs: 60_000,
  maxAutoLockRenewalDurationMs: 5 * 60_000,
  autoCompleteMessages: true,
};

const SINGLETON_DEFAULTS: SingletonHostSettings = {
  listenerLockPeriodMs: 60_000,
  listenerLockRecoveryPollingIntervalMs: 60_000,
};

/** Reads `<appRoot>/host.json`; a missing file gives the defaults, a malformed one an error naming the file. */
export async function readHostSettings(appRoot: string): Promise<HostSettings> {
  const file = path.join(appRoot, 'host.json');
  const hostJson = await readJsonFile(file, { optional: true });
  const root = asRecord(hostJson, file);
  const extensions = asRecord(root.extensions, `${file} extensions`);
  const http = asRecord(extensions.http, `${file} extensions.http`);
  const serviceBus = asRecord(extensions.serviceBus, `${file} extensions.serviceBus`);
  const singleton = asRecord(root.singleton, `${file} singleton`);
  const logLevel = asRecord(asRecord(root.logging, `${file} logging`).logLevel, `${file} logging.logLevel`);

  const routePrefix = http.routePrefix === undefined ? DEFAULT_ROUTE_PREFIX : http.routePrefix;
  if (typeof routePrefix !== 'string') {
    throw new Error(`${file}: extensions.http.routePrefix must be a string.`);
  }
  const where = (name: string) => `${file}: extensions.serviceBus.${name}`;
  return {
    routePrefix: routePrefix.replace(/^\/+|\/+$/g, ''),
    serviceBus: {
      maxConcurrentSessions: positiveInteger(
        serviceBus.maxConcurrentSessions,
        SERVICE_BUS_DEFAULTS.maxConcurrentSessions,
        where('maxConcurrentSessions'),
      ),
      maxConcurrentCalls: positiveInteger(
        serviceBus.maxConcurrentCalls,
        SERVICE_BUS_DEFAULTS.maxConcurrentCalls,
        where('maxConcurrentCalls'),
      ),
      sessionIdleTimeoutMs: optionalTimeSpan(
        serviceBus.sessionIdleTimeout,
        SERVICE_BUS_DEFAULTS.sessionIdleTimeoutMs,
        where('sessionIdleTimeout'),
      ),
      maxAutoLockRenewalDurationMs: optionalTimeSpan(
        serviceBus.maxAutoLockRenewalDuration,
        SERVICE_BUS_DEFAULTS.maxAutoLockRenewalDurationMs,
        where('maxAutoLockRenewalDuration'),
      ),
      autoCompleteMessages:
        typeof serviceBus.autoCompleteMessages === 'boolean'
          ? serviceBus.autoCompleteMessages
          : SERVICE_BUS_DEFAULTS.autoCompleteMessages,
    },
    singleton: {
      listenerLockPeriodMs: optionalTimeSpan(
        singleton.listenerLockPeriod,
        SINGLETON_DEFAULTS.listenerLockPeriodMs,
        `${file}: singleton.listenerLockPeriod`,
      ),
      listenerLockRecoveryPollingIntervalMs: optionalTimeSpan(
        singleton.listenerLockRecoveryPollingInterval,
        SINGLETON_DEFAULTS.listenerLockRecoveryPollingIntervalMs,
        `${file}: singleton.listenerLockRecoveryPollingInterval`,
      ),
    },
    logLevel: parseHostJsonLogLevel(logLevel.default) ?? 'information',
  };
}

/**
 * Loads `<appRoot>/local.settings.json` `Values` into `env` for names not already set, as `func start` does.
 * A missing file is fine; a malformed one is an error naming the file. Returns the names it set.
 */
export async function loadLocalSettings(appRoot: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const file = path.join(appRoot, 'local.settings.json');
  const settings = asRecord(await readJsonFile(file, { optional: true }), file);
  const values = asRecord(settings.Values, `${file} Values`);
  const applied: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    if (env[name] !== undefined) {
      continue;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new Error(`${file}: Values.${name} must be a string.`);
    }
    env[name] = String(value);
    applied.push(name);
  }
  return applied;
}

/**
 * Replaces each `%SettingName%` in a binding property with that app setting, as the Functions host does.
 * A missing setting is an error that names it and where it is used.
 */
export function resolveAppSettingReferences(value: string, env: NodeJS.ProcessEnv, usedBy: string): string {
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const setting = env[name];
    if (setting === undefined) {
      throw new Error(`${usedBy} refers to app setting '%${name}%', which is not set.`);
    }
    return setting;
  });
}

/**
 * Parses a .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fffffff]`. Returns milliseconds, or undefined when
 * the text is not a TimeSpan.
 */
export function parseTimeSpan(text: string): number | undefined {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(text.trim());
  if (!match) {
    return undefined;
  }
  const [, days, hours, minutes, seconds, fraction] = match;
  const hoursValue = Number(hours);
  const minutesValue = Number(minutes);
  const secondsValue = Number(seconds);
  if (hoursValue > 23 || minutesValue > 59 || secondsValue > 59) {
    return undefined;
  }
  const fractionMs = fraction ? Number(`0.${fraction}`) * 1000 : 0;
  return (
    ((Number(days ?? 0) * 24 + hoursValue) * 60 + minutesValue) * 60_000 + secondsValue * 1000 + Math.round(fractionMs)
  );
}

function optionalTimeSpan(value: unknown, fallback: number, where: string): number {
  if (value === undefined || value === null) {
    return fallback;
  }
  const parsed = typeof value === 'string' ? parseTimeSpan(value) : undefined;
  if (parsed === undefined) {
    throw new Error(`${where} must be a TimeSpan such as "00:00:30", got ${JSON.stringify(value)}.`);
  }
  return parsed;
}

function positiveInteger(value: unknown, fallback: number, where: string): number {
  if (value === undefined || value === null) {
    return fallback;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new Error(`${where} must be a positive integer, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function asRecord(value: unknown, where: string): Record<string, unknown> {
  if (value === undefined || value === null) {
    return {};
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${where} must be a JSON object.`);
  }
  return value as Record<string, unknown>;
}

export async function readJsonFile(file: string, options: { optional: boolean }): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (options.optional && (error as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined;
    }
    throw new Error(`Cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    // host.json and local.settings.json may start with a BOM when written by Windows tools.
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}
