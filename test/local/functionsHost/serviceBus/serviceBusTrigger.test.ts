import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import type { RegisteredFunction } from '../../../../local/functionsHost/functionsCoreModule';
import {
  resolveServiceBusTrigger,
  toMessageData,
  toTriggerMetadata,
} from '../../../../local/functionsHost/serviceBus/serviceBusTrigger';

function serviceBusFunction(trigger: Record<string, unknown>): RegisteredFunction {
  const binding = { type: 'serviceBusTrigger', direction: 'in' as const, ...trigger };
  return {
    name: 'runDeviceJob',
    functionId: 'runDeviceJob',
    metadata: { name: 'runDeviceJob', bindings: { serviceBusTrigger1a2b: binding } },
    callback: () => undefined,
    triggerBindingName: 'serviceBusTrigger1a2b',
    trigger: binding,
    triggerType: 'serviceBusTrigger',
  };
}

describe('resolveServiceBusTrigger', () => {
  it('resolves %Setting% entity names and the connection string from the named app setting', () => {
    const setup = resolveServiceBusTrigger(
      serviceBusFunction({ connection: 'ServiceBusConnection', queueName: '%JOBS_QUEUE%', isSessionsEnabled: true }),
      { ServiceBusConnection: 'Endpoint=sb://localhost;UseDevelopmentEmulator=true', JOBS_QUEUE: 'device-jobs' },
    );
    expect(setup).toEqual({
      entity: { description: 'queue device-jobs', path: ['device-jobs'] },
      connectionString: 'Endpoint=sb://localhost;UseDevelopmentEmulator=true',
      isSessionsEnabled: true,
      autoCompleteMessages: true,
      binary: false,
    });
  });

  it('supports topic subscriptions and the default AzureWebJobsServiceBus connection', () => {
    const setup = resolveServiceBusTrigger(
      serviceBusFunction({ topicName: 'twin-events', subscriptionName: 'automation', dataType: 'binary' }),
      { AzureWebJobsServiceBus: 'Endpoint=sb://localhost' },
    );
    expect(setup.entity.path).toEqual(['twin-events', 'automation']);
    expect(setup.binary).toBe(true);
  });

  it('explains what is missing or unsupported', () => {
    const fn = serviceBusFunction({ connection: 'ServiceBusConnection', queueName: 'device-jobs' });
    expect(() => resolveServiceBusTrigger(fn, {})).toThrow(
      "Function 'runDeviceJob': the app setting ServiceBusConnection (the Service Bus connection string) is not set.",
    );
    expect(() =>
      resolveServiceBusTrigger(fn, { ServiceBusConnection__fullyQualifiedNamespace: 'ns.servicebus.windows.net' }),
    ).toThrow(/managed-identity connection, which the local host does not support/);
    expect(() =>
      resolveServiceBusTrigger(serviceBusFunction({ connection: 'C', queueName: '%MISSING%' }), { C: 'x' }),
    ).toThrow(/refers to app setting '%MISSING%', which is not set/);
    expect(() =>
      resolveServiceBusTrigger(serviceBusFunction({ connection: 'C', queueName: 'q', cardinality: 'many' }), {
        C: 'x',
      }),
    ).toThrow(/cardinality "many"\) are not supported/);
    expect(() => resolveServiceBusTrigger(serviceBusFunction({ connection: 'C' }), { C: 'x' })).toThrow(
      /needs "queueName", or "topicName" and "subscriptionName"/,
    );
  });
});

describe('Service Bus message conversion', () => {
  it('passes bodies as UTF-8 strings (JSON is parsed by the library) or as bytes for dataType binary', () => {
    expect(toMessageData(Buffer.from('{"a":1}'), false)).toEqual({ string: '{"a":1}' });
    expect(toMessageData(Buffer.from([1, 2, 3]), true)).toEqual({ bytes: Buffer.from([1, 2, 3]) });
    expect(toMessageData('plain text', false)).toEqual({ string: 'plain text' });
    expect(toMessageData({ a: 1 }, false)).toEqual({ json: '{"a":1}' });
  });

  it('builds the trigger metadata with Azure names and a delivery count that starts at 1', () => {
    const enqueued = new Date('2026-05-01T10:00:00.000Z');
    const message = {
      body: Buffer.from('{}'),
      messageId: 'job-1',
      sessionId: 'sim-001',
      deliveryCount: 0,
      enqueuedTimeUtc: enqueued,
      expiresAtUtc: new Date('2026-05-15T10:00:00.000Z'),
      sequenceNumber: { low: 42, high: 0, toNumber: () => 42 },
      lockToken: 'f8f4a3c2-0000-0000-0000-000000000000',
      applicationProperties: { origin: 'automation' },
      contentType: 'application/json',
      subject: 'readDeviceProperty',
    } as unknown as ServiceBusReceivedMessage;
    const metadata = toTriggerMetadata(message, 'runDeviceJob');
    expect(metadata).toMatchObject({
      DeliveryCount: { int: 1 },
      MessageId: { string: 'job-1' },
      SessionId: { string: 'sim-001' },
      EnqueuedTimeUtc: { json: '"2026-05-01T10:00:00.000Z"' },
      ExpiresAtUtc: { json: '"2026-05-15T10:00:00.000Z"' },
      SequenceNumber: { int: 42 },
      LockToken: { string: 'f8f4a3c2-0000-0000-0000-000000000000' },
      ApplicationProperties: { json: '{"origin":"automation"}' },
      UserProperties: { json: '{"origin":"automation"}' },
      ContentType: { string: 'application/json' },
      Subject: { string: 'readDeviceProperty' },
      Label: { string: 'readDeviceProperty' },
    });
    expect(JSON.parse(metadata.sys.json ?? '{}')).toMatchObject({ MethodName: 'runDeviceJob' });
    expect(metadata).not.toHaveProperty('ReplyTo');
  });
});
