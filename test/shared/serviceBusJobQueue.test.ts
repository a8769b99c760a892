/** The job queue with the real @azure/service-bus SDK against the project's local Service Bus endpoint. */
import { ServiceBusClient } from '@azure/service-bus';
import { ServiceBusEndpoint, startServiceBusEndpoint } from '../../local/serviceBus/serviceBusEndpoint';
import { JOBS_QUEUE } from '../../shared/constants';
import { JobMessage } from '../../shared/job';
import { ServiceBusJobQueue } from '../../shared/serviceBusJobQueue';

describe('ServiceBusJobQueue', () => {
  let endpoint: ServiceBusEndpoint;
  let client: ServiceBusClient;

  beforeAll(async () => {
    endpoint = await startServiceBusEndpoint({ port: 0, log: () => undefined });
    client = new ServiceBusClient(endpoint.connectionString);
  });
  afterAll(async () => {
    await client.close();
    await endpoint.close();
  });

  it('sends JSON with messageId = jobId and sessionId = deviceId; a second send of a job is dropped', async () => {
    const sender = client.createSender(JOBS_QUEUE);
    const queue = new ServiceBusJobQueue(sender);
    const read: JobMessage = { type: 'readDeviceProperty', deviceId: 'dev-q', property: 'batteryLevel', jobId: 'q-1' };
    const write: JobMessage = {
      type: 'writeDeviceProperty',
      deviceId: 'dev-q',
      property: 'timezone',
      value: 'UTC',
      jobId: 'q-2',
    };
    await queue.send(read);
    await queue.send(read);
    await queue.send(write);

    const receiver = await client.acceptSession(JOBS_QUEUE, 'dev-q');
    const received = await receiver.receiveMessages(5, { maxWaitTimeInMs: 1500 });
    expect(received.map((m) => [m.messageId, m.sessionId, m.contentType, m.subject])).toEqual([
      ['q-1', 'dev-q', 'application/json', 'readDeviceProperty'],
      ['q-2', 'dev-q', 'application/json', 'writeDeviceProperty'],
    ]);
    expect(received.map((m) => m.body)).toEqual([read, write]);
    for (const message of received) await receiver.completeMessage(message);
    await receiver.close();
    await sender.close();
  });
});
