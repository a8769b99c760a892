/**
 * The entities of the local Service Bus namespace, declared as the Bicep templates declare them: each queue, topic
 * and subscription has a `name` and the `properties` of its ARM resource (`Microsoft.ServiceBus/namespaces/queues`,
 * `.../topics`, `.../topics/subscriptions`), with ISO-8601 durations. Only the properties the endpoint honours are
 * accepted; anything else is refused by name so that a typo never silently changes behaviour.
 */
import { readFileSync } from 'node:fs';
import { parseIsoDuration } from './isoDuration';

export interface QueueProperties {
  requiresSession?: boolean;
  maxDeliveryCount?: number;
  lockDuration?: string;
  requiresDuplicateDetection?: boolean;
  duplicateDetectionHistoryTimeWindow?: string;
  deadLetteringOnMessageExpiration?: boolean;
  defaultMessageTimeToLive?: string;
}

export interface TopicProperties {
  requiresDuplicateDetection?: boolean;
  duplicateDetectionHistoryTimeWindow?: string;
  defaultMessageTimeToLive?: string;
}

export interface SubscriptionProperties {
  requiresSession?: boolean;
  maxDeliveryCount?: number;
  lockDuration?: string;
  deadLetteringOnMessageExpiration?: boolean;
  defaultMessageTimeToLive?: string;
}

export interface EntitiesConfig {
  queues?: { name: string; properties?: QueueProperties }[];
  topics?: {
    name: string;
    properties?: TopicProperties;
    subscriptions?: { name: string; properties?: SubscriptionProperties }[];
  }[];
}

/** Settings of an entity that receivers read from (queue or subscription). Durations in milliseconds. */
export interface ReceivableEntitySettings {
  readonly requiresSession: boolean;
  readonly maxDeliveryCount: number;
  readonly lockDurationMs: number;
  readonly deadLetteringOnMessageExpiration: boolean;
  /** `Infinity` when messages never expire. */
  readonly defaultMessageTimeToLiveMs: number;
}

/** Settings of an entity that senders write to (queue or topic). */
export interface SendTargetSettings {
  /** Messages whose messageId was seen within this many ms are dropped; undefined = no duplicate detection. */
  readonly duplicateDetectionWindowMs: number | undefined;
}

export interface QueueSettings extends ReceivableEntitySettings, SendTargetSettings {
  readonly name: string;
}

export interface TopicSettings extends SendTargetSettings {
  readonly name: string;
  readonly subscriptions: readonly ({ readonly name: string } & ReceivableEntitySettings)[];
}

export interface NamespaceSettings {
  readonly queues: readonly QueueSettings[];
  readonly topics: readonly TopicSettings[];
}

/** Azure's defaults for properties left out, as ARM applies them. */
const AZURE_DEFAULTS = {
  maxDeliveryCount: 10,
  lockDuration: 'PT1M',
  duplicateDetectionHistoryTimeWindow: 'PT10M',
} as const;

const QUEUE_KEYS = [
  'requiresSession',
  'maxDeliveryCount',
  'lockDuration',
  'requiresDuplicateDetection',
  'duplicateDetectionHistoryTimeWindow',
  'deadLetteringOnMessageExpiration',
  'defaultMessageTimeToLive',
] as const;
const TOPIC_KEYS = ['requiresDuplicateDetection', 'duplicateDetectionHistoryTimeWindow', 'defaultMessageTimeToLive'];
const SUBSCRIPTION_KEYS = [
  'requiresSession',
  'maxDeliveryCount',
  'lockDuration',
  'deadLetteringOnMessageExpiration',
  'defaultMessageTimeToLive',
];
const ENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,259}$/;

export class EntitiesConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EntitiesConfigError';
  }
}

/** Reads and validates an entities file; errors name the file and the offending field. */
export function loadEntitiesConfig(path: string): NamespaceSettings {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new EntitiesConfigError(`cannot read entities file ${path}: ${(error as Error).message}`);
  }
  return resolveEntitiesConfig(json, path);
}

/** Validates a parsed entities config and resolves defaults and durations. `source` names it in errors. */
export function resolveEntitiesConfig(config: unknown, source = 'entities config'): NamespaceSettings {
  const fail = (field: string, problem: string): never => {
    throw new EntitiesConfigError(`${source}: ${field} ${problem}`);
  };
  const root = asObject(config, 'the root', fail);
  checkKeys(root, ['$schema', '$comment', 'queues', 'topics'], '', fail);
  const seen = new Set<string>();
  const claimName = (value: unknown, field: string): string => {
    const name = typeof value === 'string' && ENTITY_NAME.test(value) ? value : fail(field, 'must be an entity name');
    if (seen.has(name.toLowerCase())) fail(field, `'${name}' is declared twice (names are case-insensitive)`);
    seen.add(name.toLowerCase());
    return name;
  };

  const queues = asArray(root.queues, 'queues', fail).map((item, index): QueueSettings => {
    const field = `queues[${index}]`;
    const queue = asObject(item, field, fail);
    checkKeys(queue, ['name', 'properties'], field, fail);
    const name = claimName(queue.name, `${field}.name`);
    const properties = asObject(queue.properties ?? {}, `${field}.properties`, fail);
    checkKeys(properties, QUEUE_KEYS, `${field}.properties`, fail);
    return {
      name,
      ...receivableSettings(properties, `${field}.properties`, fail),
      ...sendTargetSettings(properties, `${field}.properties`, fail),
    };
  });

  const topics = asArray(root.topics, 'topics', fail).map((item, index): TopicSettings => {
    const field = `topics[${index}]`;
    const topic = asObject(item, field, fail);
    checkKeys(topic, ['name', 'properties', 'subscriptions'], field, fail);
    const name = claimName(topic.name, `${field}.name`);
    const properties = asObject(topic.properties ?? {}, `${field}.properties`, fail);
    checkKeys(properties, TOPIC_KEYS, `${field}.properties`, fail);
    const topicTimeToLive = optionalDuration(properties.defaultMessageTimeToLive, `${field}.properties`, fail);
    const subscriptionNames = new Set<string>();
    const subscriptions = asArray(topic.subscriptions, `${field}.subscriptions`, fail).map((subItem, subIndex) => {
      const subField = `${field}.subscriptions[${subIndex}]`;
      const subscription = asObject(subItem, subField, fail);
      checkKeys(subscription, ['name', 'properties'], subField, fail);
      const subName =
        typeof subscription.name === 'string' && ENTITY_NAME.test(subscription.name)
          ? subscription.name
          : fail(`${subField}.name`, 'must be an entity name');
      if (subscriptionNames.has(subName.toLowerCase())) fail(`${subField}.name`, `'${subName}' is declared twice`);
      subscriptionNames.add(subName.toLowerCase());
      const subProperties = asObject(subscription.properties ?? {}, `${subField}.properties`, fail);
      checkKeys(subProperties, SUBSCRIPTION_KEYS, `${subField}.properties`, fail);
      const settings = receivableSettings(subProperties, `${subField}.properties`, fail);
      return {
        name: subName,
        ...settings,
        defaultMessageTimeToLiveMs: Math.min(settings.defaultMessageTimeToLiveMs, topicTimeToLive),
      };
    });
    return { name, subscriptions, ...sendTargetSettings(properties, `${field}.properties`, fail) };
  });

  return { queues, topics };
}

type Fail = (field: string, problem: string) => never;
type JsonObject = Record<string, unknown>;

function asObject(value: unknown, field: string, fail: Fail): JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as JsonObject)
    : fail(field, 'must be an object');
}

function asArray(value: unknown, field: string, fail: Fail): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : fail(field, 'must be an array');
}

function checkKeys(object: JsonObject, allowed: readonly string[], field: string, fail: Fail): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      fail(field ? `${field}.${key}` : key, `is not supported (supported: ${allowed.join(', ')})`);
    }
  }
}

function optionalBoolean(value: unknown, field: string, fail: Fail): boolean {
  if (value === undefined) return false;
  return typeof value === 'boolean' ? value : fail(field, 'must be true or false');
}

function duration(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'string') return fail(field, 'must be an ISO-8601 duration string such as PT1M');
  let ms: number;
  try {
    ms = parseIsoDuration(value);
  } catch (error) {
    return fail(field, (error as Error).message);
  }
  return ms > 0 ? ms : fail(field, 'must be longer than zero');
}

function optionalDuration(value: unknown, field: string, fail: Fail): number {
  return value === undefined ? Infinity : duration(value, `${field}.defaultMessageTimeToLive`, fail);
}

function receivableSettings(properties: JsonObject, field: string, fail: Fail): ReceivableEntitySettings {
  const maxDeliveryCount = properties.maxDeliveryCount ?? AZURE_DEFAULTS.maxDeliveryCount;
  if (typeof maxDeliveryCount !== 'number' || !Number.isInteger(maxDeliveryCount) || maxDeliveryCount < 1) {
    fail(`${field}.maxDeliveryCount`, 'must be an integer >= 1');
  }
  return {
    requiresSession: optionalBoolean(properties.requiresSession, `${field}.requiresSession`, fail),
    maxDeliveryCount: maxDeliveryCount as number,
    lockDurationMs: duration(properties.lockDuration ?? AZURE_DEFAULTS.lockDuration, `${field}.lockDuration`, fail),
    deadLetteringOnMessageExpiration: optionalBoolean(
      properties.deadLetteringOnMessageExpiration,
      `${field}.deadLetteringOnMessageExpiration`,
      fail,
    ),
    defaultMessageTimeToLiveMs: optionalDuration(properties.defaultMessageTimeToLive, field, fail),
  };
}

function sendTargetSettings(properties: JsonObject, field: string, fail: Fail): SendTargetSettings {
  const enabled = optionalBoolean(properties.requiresDuplicateDetection, `${field}.requiresDuplicateDetection`, fail);
  const window = duration(
    properties.duplicateDetectionHistoryTimeWindow ?? AZURE_DEFAULTS.duplicateDetectionHistoryTimeWindow,
    `${field}.duplicateDetectionHistoryTimeWindow`,
    fail,
  );
  return { duplicateDetectionWindowMs: enabled ? window : undefined };
}
