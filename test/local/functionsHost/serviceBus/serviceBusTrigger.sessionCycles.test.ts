/** The Service Bus trigger's session loop through the real SDK against the local endpoint, run in-process. */
import { getEventListeners } from 'node:events';
import { ServiceBusClient } from '@azure/service-bus';
import type { RegisteredFunction } from '../../../../local/functionsHost/functionsCoreModule';
import type { FunctionInvoker, InvocationInput } from '../../../../local/functionsHost/functionInvoker';
import type { HostLogger } from '../../../../local/functionsHost/hostLogger';
import {
  resolveServiceBusTrigger,
  ServiceBusTrigger,
} from '../../../../local/functionsHost/serviceBus/serviceBusTrigger';
import { startServiceBusEndpoint, type ServiceBusEndpoint } from '../../../../local/serviceBus/serviceBusEndpoint';

const QUEUE = 'jobs';
const SESSIONS = 40;

function sessionTriggeredFunction(): RegisteredFunction {
  const binding = {
    type: 'serviceBusTrigger',
    direction: 'in' as const,
    connection: 'ServiceBusConnection',
    queueName: QUEUE,
    isSessionsEnabled: true,
  };
  return {
    name: 'runDeviceJob',
    functionId: 'runDeviceJob',
    metadata: { name: 'runDeviceJob', bindings: { serviceBusTrigger1: binding } },
    callback: () => undefined,
    triggerBindingName: 'serviceBusTrigger1',
    trigger: binding,
    triggerType: 'serviceBusTrigger',
  };
}

let endpoint: ServiceBusEndpoint;
let client: ServiceBusClient;

beforeEach(async () => {
  endpoint = await startServiceBusEndpoint({
    port: 0,
    entities: { queues: [{ name: QUEUE, properties: { requiresSession: true, lockDuration: 'PT30S' } }] },
  });
  client = new ServiceBusClient(endpoint.connectionString);
});

afterEach(async () => {
  jest.restoreAllMocks();
  await client.close();
  await endpoint.close();
});

test('handling many sessions one after another leaves no abort listeners behind: each signal keeps a few at most', async () => {
  const signals = new Set<AbortSignal>();
  const addEventListener = EventTarget.prototype.addEventListener;
  jest.spyOn(EventTarget.prototype, 'addEventListener').mockImplementation(function (
    this: EventTarget,
    ...args: Parameters<EventTarget['addEventListener']>
  ) {
    if (this instanceof AbortSignal && args[0] === 'abort') signals.add(this);
    return addEventListener.apply(this, args);
  });

  const handled: string[] = [];
  let mostListeners = 0;
  const invoker = {
    async invoke(_fn: RegisteredFunction, input: InvocationInput) {
      handled.push(String(input.triggerMetadata?.SessionId?.string));
      for (const signal of signals) mostListeners = Math.max(mostListeners, getEventListeners(signal, 'abort').length);
      return {};
    },
  } as unknown as FunctionInvoker;
  const logger: HostLogger = {
    write: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  };
  const fn = sessionTriggeredFunction();
  const trigger = new ServiceBusTrigger(
    fn,
    resolveServiceBusTrigger(fn, { ServiceBusConnection: endpoint.connectionString }),
    invoker,
    {
      maxConcurrentSessions: 2,
      maxConcurrentCalls: 1,
      sessionIdleTimeoutMs: 50,
      maxAutoLockRenewalDurationMs: 60_000,
      autoCompleteMessages: true,
    },
    logger,
  );
  const sender = client.createSender(QUEUE);
  await sender.sendMessages(
    Array.from({ length: SESSIONS }, (_, index) => ({ body: 'job', sessionId: `dev-${index}` })),
  );
  await trigger.start();
  try {
    const deadline = Date.now() + 20_000;
    while (handled.length < SESSIONS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    for (const signal of signals) mostListeners = Math.max(mostListeners, getEventListeners(signal, 'abort').length);
  } finally {
    await trigger.close();
  }
  expect(handled.sort()).toEqual(Array.from({ length: SESSIONS }, (_, index) => `dev-${index}`).sort());
  // Node warns past 10 listeners on one signal ("Possible EventTarget memory leak"); before, the trigger's one shared
  // signal kept a listener per session handled (41 here).
  expect(mostListeners).toBeLessThanOrEqual(3);
});
