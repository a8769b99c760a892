import { ServiceBusClient, ServiceBusReceivedMessage } from '@azure/service-bus';
import { ServiceBusEndpoint, startServiceBusEndpoint } from '../../local/serviceBus/serviceBusEndpoint';
import { EVENTS_TOPIC } from '../../shared/constants';
import {
  ServiceBusEventPublisher,
  TwinEvent,
  connectionEvent,
  eventId,
  jobEndedEvent,
  propertyFreshEvents,
  propertyStaleEvents,
} from '../../shared/twinEvents';

const T = '2026-01-01T00:00:00.000Z';

describe('twin events', () => {
  it('are built with the time of the change', () => {
    expect(propertyStaleEvents('dev-1', [{ property: 'batteryLevel', since: T, reason: 'disconnected' }])).toEqual([
      { deviceId: 'dev-1', kind: 'propertyStale', property: 'batteryLevel', time: T, reason: 'disconnected' },
    ]);
    const readings = [
      { name: 'batteryLevel', time: '2026-01-01T00:00:02.000Z' },
      { name: 'batteryLevel', time: '2026-01-01T00:00:05.000Z' },
      { name: 'timezone', time: '2026-01-01T00:00:03.000Z' },
    ];
    expect(propertyFreshEvents('dev-1', ['batteryLevel'], readings)).toEqual([
      { deviceId: 'dev-1', kind: 'propertyFresh', property: 'batteryLevel', time: '2026-01-01T00:00:05.000Z' },
    ]);
    expect(connectionEvent('dev-1', 'disconnected', T)).toEqual({
      deviceId: 'dev-1',
      kind: 'deviceDisconnected',
      time: T,
    });
    expect(jobEndedEvent({ deviceId: 'dev-1', jobId: 'j-1', status: 'failed' }, T)).toEqual({
      deviceId: 'dev-1',
      kind: 'jobEnded',
      jobId: 'j-1',
      status: 'failed',
      time: T,
    });
  });

  it('have ids that are equal for the same change and differ otherwise', () => {
    const stale: TwinEvent = { deviceId: 'd', kind: 'propertyStale', property: 'batteryLevel', time: T };
    expect(eventId(stale)).toBe(eventId({ ...stale }));
    expect(eventId(stale)).not.toBe(eventId({ ...stale, property: 'timezone' }));
    expect(eventId(stale)).not.toBe(eventId({ ...stale, kind: 'propertyFresh' }));
    expect(eventId({ ...stale, deviceId: 'x'.repeat(128) })).toHaveLength(32);
  });
});

describe('ServiceBusEventPublisher on the local Service Bus endpoint (real SDK)', () => {
  let endpoint: ServiceBusEndpoint;
  let client: ServiceBusClient;

  beforeAll(async () => {
    // The project's entities file: topic twin-events with its subscription `automation`, as infra/ declares them.
    endpoint = await startServiceBusEndpoint({ port: 0, log: () => undefined });
    client = new ServiceBusClient(endpoint.connectionString);
  });
  afterAll(async () => {
    await client.close();
    await endpoint.close();
  });

  async function receiveAll(count: number): Promise<ServiceBusReceivedMessage[]> {
    const receiver = client.createReceiver(EVENTS_TOPIC, 'automation', { receiveMode: 'receiveAndDelete' });
    const received: ServiceBusReceivedMessage[] = [];
    const deadline = Date.now() + 10_000;
    while (received.length < count && Date.now() < deadline) {
      received.push(...(await receiver.receiveMessages(count - received.length, { maxWaitTimeInMs: 1000 })));
    }
    await receiver.close();
    return received;
  }

  it('puts each event on the twin-events topic as JSON, with kind and deviceId to filter on', async () => {
    const sender = client.createSender(EVENTS_TOPIC);
    const publisher = new ServiceBusEventPublisher(sender);
    const event: TwinEvent = {
      deviceId: 'dev-7',
      kind: 'propertyStale',
      property: 'batteryLevel',
      time: T,
      reason: 'missedNotify',
    };
    await publisher.publish([event]);
    const [message, ...more] = await receiveAll(1);
    expect(more).toEqual([]);
    expect(message.body).toEqual(event);
    expect(message.contentType).toBe('application/json');
    expect(message.subject).toBe('propertyStale');
    expect(message.messageId).toBe(eventId(event));
    expect(message.applicationProperties).toEqual({
      kind: 'propertyStale',
      deviceId: 'dev-7',
      property: 'batteryLevel',
    });
    await sender.close();
  });

  it('publishes a sweep-sized list in order, in several sends', async () => {
    const sender = client.createSender(EVENTS_TOPIC);
    const events = Array.from({ length: 250 }, (_, i): TwinEvent => ({
      deviceId: `dev-${i}`,
      kind: 'propertyStale',
      property: 'timezone',
      time: T,
    }));
    await new ServiceBusEventPublisher(sender).publish(events);
    const received = await receiveAll(250);
    expect(received.map((message) => (message.body as TwinEvent).deviceId)).toEqual(events.map((e) => e.deviceId));
    await sender.close();
  });
});
