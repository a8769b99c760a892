import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import {
  isServiceBusError,
  ServiceBusClient,
  type ServiceBusReceivedMessage,
  type ServiceBusReceiver,
  type ServiceBusReceiverOptions,
  type ServiceBusSessionReceiver,
  type ServiceBusSessionReceiverOptions,
} from '@azure/service-bus';
import type { RegisteredFunction } from '../functionsCoreModule';
import type { RpcTypedData } from '../functionsCoreTypes';
import { FunctionInvocationError, type FunctionInvoker } from '../functionInvoker';
import { describeError, type HostLogger } from '../hostLogger';
import { resolveAppSettingReferences, type ServiceBusHostSettings } from '../hostSettings';
import type { TriggerListener } from '../triggerListener';

/** The trigger's `connection` when it names none, as in the Service Bus extension. */
export const DEFAULT_SERVICE_BUS_CONNECTION_SETTING = 'AzureWebJobsServiceBus';

/** SDK retry policy for the local host: short delays, so a restarted local endpoint is picked up quickly. */
const CLIENT_RETRY_OPTIONS = { maxRetries: 3, retryDelayInMs: 500, maxRetryDelayInMs: 5_000 };
/** An accept that found no free session sooner than this waits out the rest, so a busy-looping endpoint cannot spin us. */
const MIN_ACCEPT_CYCLE_MS = 1_000;
/** At most one connectivity warning per trigger in this interval (ms). */
const FAILURE_WARNING_INTERVAL_MS = 10_000;
/** How long close() waits for session loops to notice the closed connection (ms). */
const LOOP_EXIT_GRACE_MS = 500;
/** Back-off after an unexpected receive failure (connection refused, entity missing): doubles up to the maximum. */
const FAILURE_BACKOFF_INITIAL_MS = 500;
const FAILURE_BACKOFF_MAX_MS = 30_000;

export interface ServiceBusEntity {
  /** `queue <name>` or `topic <name>, subscription <name>`, for messages. */
  description: string;
  /** Arguments before the options in the SDK's receiver calls. */
  path: [queueName: string] | [topicName: string, subscriptionName: string];
}

export interface ServiceBusTriggerSetup {
  entity: ServiceBusEntity;
  connectionString: string;
  isSessionsEnabled: boolean;
  autoCompleteMessages: boolean;
  /** The binding's `dataType`: `binary` passes the body as bytes, anything else as a UTF-8 string (JSON is parsed). */
  binary: boolean;
}

/**
 * Reads a Service Bus trigger's binding as the Functions host does: `%Setting%` references in entity names, and the
 * connection from the app setting named by `connection` (a connection string). `<name>__fullyQualifiedNamespace`
 * (managed identity) is not supported by the local host; the error says so.
 */
export function resolveServiceBusTrigger(fn: RegisteredFunction, env: NodeJS.ProcessEnv): ServiceBusTriggerSetup {
  const trigger = fn.trigger;
  const where = `Function '${fn.name}'`;
  const text = (name: string): string | undefined => {
    const value = trigger[name];
    if (value === undefined || value === null || value === '') {
      return undefined;
    }
    if (typeof value !== 'string') {
      throw new Error(`${where}: the Service Bus trigger's "${name}" must be a string.`);
    }
    return resolveAppSettingReferences(value, env, `${where} (${name})`);
  };
  if (trigger.cardinality === 'many') {
    throw new Error(`${where}: Service Bus batches (cardinality "many") are not supported by the local host.`);
  }
  const queueName = text('queueName');
  const topicName = text('topicName');
  const subscriptionName = text('subscriptionName');
  let entity: ServiceBusEntity;
  if (queueName) {
    entity = { description: `queue ${queueName}`, path: [queueName] };
  } else if (topicName && subscriptionName) {
    entity = {
      description: `topic ${topicName}, subscription ${subscriptionName}`,
      path: [topicName, subscriptionName],
    };
  } else {
    throw new Error(`${where}: the Service Bus trigger needs "queueName", or "topicName" and "subscriptionName".`);
  }
  const settingName = text('connection') ?? DEFAULT_SERVICE_BUS_CONNECTION_SETTING;
  const connectionString = env[settingName];
  if (!connectionString) {
    if (env[`${settingName}__fullyQualifiedNamespace`]) {
      throw new Error(
        `${where}: app setting ${settingName}__fullyQualifiedNamespace selects a managed-identity connection, which the ` +
          `local host does not support; set ${settingName} to a connection string (the local endpoint's) instead.`,
      );
    }
    throw new Error(`${where}: the app setting ${settingName} (the Service Bus connection string) is not set.`);
  }
  return {
    entity,
    connectionString,
    isSessionsEnabled: trigger.isSessionsEnabled === true,
    autoCompleteMessages: typeof trigger.autoCompleteMessages === 'boolean' ? trigger.autoCompleteMessages : true,
    binary: trigger.dataType === 'binary',
  };
}

/** What a function asks for when it throws an error carrying these fields: dead-letter the message now. */
interface DeadLetterRequest {
  deadLetterReason: string;
  deadLetterErrorDescription: string;
}

/**
 * The local stand-in for the `deadletter` action of the Service Bus SDK-type binding (ServiceBusMessageActions): a
 * handler error with a string `deadLetterReason` (and optional `deadLetterErrorDescription`) dead-letters the message
 * with them instead of abandoning it. On Azure without that binding the message is abandoned, and reaches the
 * dead-letter queue after maxDeliveryCount with reason MaxDeliveryCountExceeded.
 */
function deadLetterRequestOf(error: unknown): DeadLetterRequest | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { deadLetterReason, deadLetterErrorDescription } = error as Record<string, unknown>;
  if (typeof deadLetterReason !== 'string' || deadLetterReason === '') return undefined;
  return {
    deadLetterReason,
    deadLetterErrorDescription: typeof deadLetterErrorDescription === 'string' ? deadLetterErrorDescription : '',
  };
}

/**
 * A Service Bus queue (or topic subscription) trigger with the Functions extension's semantics: peek-lock; complete on
 * success, abandon when the handler throws (so Service Bus redelivers with `deliveryCount` + 1 and dead-letters past
 * `maxDeliveryCount`). With sessions: up to `maxConcurrentSessions` sessions at once, one message at a time per session
 * in order, and a session is released after `sessionIdleTimeout` without messages. Without sessions: up to
 * `maxConcurrentCalls` messages at once.
 */
export class ServiceBusTrigger implements TriggerListener {
  readonly #client: ServiceBusClient;
  /**
   * One controller per SDK call in progress (accept, receive, pause), aborted by stop() and dropped when its call
   * ends: whatever the SDK leaves on a call's signal (7.9 leaves one listener per receive that ends with a drain) goes
   * with it, so listeners stay bounded by the calls in progress however many sessions the trigger handles.
   */
  readonly #calls = new Set<AbortController>();
  #stopped = false;
  readonly #loops: Promise<void>[] = [];
  #receiver?: ServiceBusReceiver;
  #subscription?: { close(): Promise<void> };
  readonly #processing = new Set<Promise<void>>();
  #lastFailureWarningAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly fn: RegisteredFunction,
    private readonly setup: ServiceBusTriggerSetup,
    private readonly invoker: FunctionInvoker,
    private readonly settings: ServiceBusHostSettings,
    private readonly logger: HostLogger,
  ) {
    try {
      this.#client = new ServiceBusClient(setup.connectionString, { retryOptions: CLIENT_RETRY_OPTIONS });
    } catch (error) {
      throw new Error(
        `Function '${fn.name}': the Service Bus connection string is not valid: ${(error as Error).message}`,
      );
    }
  }

  async start(): Promise<void> {
    if (this.setup.isSessionsEnabled) {
      for (let slot = 0; slot < this.settings.maxConcurrentSessions; slot++) {
        this.#loops.push(this.runSessionSlot());
      }
      return;
    }
    const options: ServiceBusReceiverOptions = {
      receiveMode: 'peekLock',
      skipParsingBodyAsJson: true,
      maxAutoLockRenewalDurationInMs: this.settings.maxAutoLockRenewalDurationMs,
    };
    const [queueOrTopic, subscription] = this.setup.entity.path;
    const receiver =
      subscription === undefined
        ? this.#client.createReceiver(queueOrTopic, options)
        : this.#client.createReceiver(queueOrTopic, subscription, options);
    this.#receiver = receiver;
    this.#subscription = receiver.subscribe(
      {
        processMessage: (message) => this.track(this.process(receiver, message)),
        processError: async (args) => {
          if (!this.#stopped) {
            this.warnAboutReceiveFailure(`receiving from ${this.setup.entity.description}`, args.error);
          }
        },
      },
      { autoCompleteMessages: false, maxConcurrentCalls: this.settings.maxConcurrentCalls },
    );
  }

  async stop(): Promise<void> {
    if (this.#stopped) {
      return;
    }
    this.#stopped = true;
    for (const call of this.#calls) call.abort();
    await this.#subscription?.close().catch(() => undefined);
  }

  /**
   * Waits for messages in hand to be settled, then closes the connection. An accept waiting for a free session honours
   * neither the abort signal nor the connection close (SDK 7.9 holds it up to its operation timeout), so session loops
   * still waiting get only a short grace before close() returns; they end on their own with the timeout.
   */
  async close(): Promise<void> {
    await this.stop();
    await Promise.allSettled([...this.#processing]);
    await this.#receiver?.close().catch(() => undefined);
    await this.#client.close().catch(() => undefined);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(this.#loops),
      new Promise<void>((resolve) => (grace = setTimeout(resolve, LOOP_EXIT_GRACE_MS).unref())),
    ]);
    clearTimeout(grace);
  }

  describe(): string[] {
    const mode = this.setup.isSessionsEnabled
      ? `sessions, up to ${this.settings.maxConcurrentSessions} at once`
      : `up to ${this.settings.maxConcurrentCalls} messages at once`;
    return [`${this.fn.name}: serviceBusTrigger ${this.setup.entity.description} (${mode})`];
  }

  private track(work: Promise<void>): Promise<void> {
    this.#processing.add(work);
    return work.finally(() => this.#processing.delete(work));
  }

  private async runSessionSlot(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      const startedAt = Date.now();
      let receiver: ServiceBusSessionReceiver;
      try {
        receiver = await this.untilStopped((abortSignal) => {
          const options: ServiceBusSessionReceiverOptions = {
            receiveMode: 'peekLock',
            maxAutoLockRenewalDurationInMs: this.settings.maxAutoLockRenewalDurationMs,
            skipParsingBodyAsJson: true,
            abortSignal,
          };
          const [queueOrTopic, subscription] = this.setup.entity.path;
          return subscription === undefined
            ? this.#client.acceptNextSession(queueOrTopic, options)
            : this.#client.acceptNextSession(queueOrTopic, subscription, options);
        });
        failures = 0;
      } catch (error) {
        if (this.#stopped) {
          return;
        }
        if (isNoSessionAvailable(error)) {
          await this.pause(MIN_ACCEPT_CYCLE_MS - (Date.now() - startedAt));
        } else {
          failures++;
          this.warnAboutReceiveFailure(`accepting a session on ${this.setup.entity.description}`, error);
          await this.pause(Math.min(FAILURE_BACKOFF_MAX_MS, FAILURE_BACKOFF_INITIAL_MS * 2 ** (failures - 1)));
        }
        continue;
      }
      try {
        await this.runSession(receiver);
      } catch (error) {
        if (!this.#stopped) {
          this.logger.warn(`Function '${this.fn.name}': session '${receiver.sessionId}' ended: ${errorSummary(error)}`);
        }
      } finally {
        await receiver.close().catch(() => undefined);
      }
    }
  }

  /** Handles one session's messages in order until it stays idle for the session idle timeout. */
  private async runSession(receiver: ServiceBusSessionReceiver): Promise<void> {
    while (!this.#stopped) {
      const [message] = await this.untilStopped((abortSignal) =>
        receiver.receiveMessages(1, { maxWaitTimeInMs: this.settings.sessionIdleTimeoutMs, abortSignal }),
      );
      if (!message) {
        return;
      }
      await this.track(this.process(receiver, message));
    }
  }

  /** Invokes the function for one message and settles it; never throws. */
  private async process(receiver: ServiceBusReceiver, message: ServiceBusReceivedMessage): Promise<void> {
    let succeeded = false;
    let deadLetter: DeadLetterRequest | undefined;
    try {
      await this.invoker.invoke(this.fn, {
        inputData: [{ name: this.fn.triggerBindingName, data: toMessageData(message.body, this.setup.binary) }],
        triggerMetadata: toTriggerMetadata(message, this.fn.name),
      });
      succeeded = true;
    } catch (error) {
      if (!(error instanceof FunctionInvocationError)) {
        this.logger.error(`Function '${this.fn.name}': ${describeError(error)}`);
      }
      deadLetter = deadLetterRequestOf(error instanceof FunctionInvocationError ? error.cause : error);
    }
    try {
      if (deadLetter) {
        await receiver.deadLetterMessage(message, { ...deadLetter });
      } else if (!succeeded) {
        await receiver.abandonMessage(message);
      } else if (this.setup.autoCompleteMessages) {
        await receiver.completeMessage(message);
      }
    } catch (error) {
      this.logger.warn(
        `Function '${this.fn.name}': ${succeeded ? 'completing' : 'abandoning'} message '${String(message.messageId)}' ` +
          `failed (it will be redelivered when its lock expires): ${errorSummary(error)}`,
      );
    }
  }

  /** Session slots fail together when the namespace is unreachable: one warning per interval, not one per slot. */
  private warnAboutReceiveFailure(what: string, error: unknown): void {
    const now = Date.now();
    if (now - this.#lastFailureWarningAt < FAILURE_WARNING_INTERVAL_MS) {
      return;
    }
    this.#lastFailureWarningAt = now;
    this.logger.warn(
      `Function '${this.fn.name}': ${what} failed, retrying with back-off (up to ${FAILURE_BACKOFF_MAX_MS / 1000} s): ` +
        errorSummary(error),
    );
  }

  /** Waits `ms`, or less if the trigger stops meanwhile. */
  private async pause(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) {
      return;
    }
    await this.untilStopped((signal) => delay(ms, undefined, { signal })).catch(() => undefined);
  }

  /** Runs one SDK call with a signal of its own that stop() aborts (already aborted once the trigger has stopped). */
  private async untilStopped<T>(call: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    if (this.#stopped) controller.abort();
    this.#calls.add(controller);
    try {
      return await call(controller.signal);
    } finally {
      this.#calls.delete(controller);
    }
  }
}

function isNoSessionAvailable(error: unknown): boolean {
  return isServiceBusError(error) && (error.code === 'ServiceTimeout' || error.code === 'SessionCannotBeLocked');
}

function errorSummary(error: unknown): string {
  if (isServiceBusError(error)) {
    return `${error.code}: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * The message body as the Functions host passes it to a Node.js function: a UTF-8 string (which `@azure/functions`
 * parses when it is JSON), or bytes with `dataType: 'binary'`. AMQP value bodies that are not text are sent as JSON.
 */
export function toMessageData(body: unknown, binary: boolean): RpcTypedData {
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
    const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return binary ? { bytes } : { string: bytes.toString('utf8') };
  }
  if (typeof body === 'string') {
    return binary ? { bytes: Buffer.from(body, 'utf8') } : { string: body };
  }
  if (body === undefined || body === null) {
    return binary ? { bytes: Buffer.alloc(0) } : { string: '' };
  }
  const json = JSON.stringify(body, jsonReplacer);
  return binary ? { bytes: Buffer.from(json, 'utf8') } : { json };
}

/**
 * Trigger metadata with the names and value kinds of the Service Bus extension's binding data (PascalCase; the library
 * camel-cases keys, so handlers read `context.triggerMetadata.deliveryCount`, `.messageId`, `.sessionId`,
 * `.enqueuedTimeUtc`, `.applicationProperties`, ...). Times are ISO 8601 UTC strings.
 */
export function toTriggerMetadata(
  message: ServiceBusReceivedMessage,
  functionName: string,
): Record<string, RpcTypedData> {
  const metadata: Record<string, RpcTypedData> = {};
  const put = (name: string, value: unknown): void => {
    const data = toMetadataValue(value);
    if (data) {
      metadata[name] = data;
    }
  };
  const applicationProperties = message.applicationProperties ?? {};
  // The AMQP header counts prior attempts (0 on the first delivery); the JavaScript SDK passes it through, while the
  // .NET SDK under the Functions host adds one, so Azure reports 1 for a first delivery.
  put('DeliveryCount', (message.deliveryCount ?? 0) + 1);
  put('DeadLetterSource', message.deadLetterSource);
  put('LockToken', message.lockToken);
  put('ExpiresAtUtc', message.expiresAtUtc);
  put('ExpiresAt', message.expiresAtUtc);
  put('EnqueuedTimeUtc', message.enqueuedTimeUtc);
  put('EnqueuedTime', message.enqueuedTimeUtc);
  put('MessageId', message.messageId);
  put('ContentType', message.contentType);
  put('ReplyTo', message.replyTo);
  put('SequenceNumber', message.sequenceNumber);
  put('To', message.to);
  put('Subject', message.subject);
  put('Label', message.subject);
  put('CorrelationId', message.correlationId);
  put('ApplicationProperties', applicationProperties);
  put('UserProperties', applicationProperties);
  put('SessionId', message.sessionId);
  put('ReplyToSessionId', message.replyToSessionId);
  put('PartitionKey', message.partitionKey);
  put('sys', { MethodName: functionName, UtcNow: new Date().toISOString(), RandGuid: randomUUID() });
  return metadata;
}

function toMetadataValue(value: unknown): RpcTypedData | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }
  if (typeof value === 'string') {
    return { string: value };
  }
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { int: value } : { double: value };
  }
  if (isLong(value)) {
    return { int: value.toNumber() };
  }
  if (Buffer.isBuffer(value)) {
    return { string: value.toString('utf8') };
  }
  return { json: JSON.stringify(value, jsonReplacer) };
}

interface LongLike {
  toNumber(): number;
  low: number;
  high: number;
}

function isLong(value: unknown): value is LongLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as LongLike).toNumber === 'function' &&
    typeof (value as LongLike).low === 'number' &&
    typeof (value as LongLike).high === 'number'
  );
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (isLong(value)) {
    return value.toNumber();
  }
  if (typeof value === 'bigint') {
    return Number(value);
  }
  return value;
}
