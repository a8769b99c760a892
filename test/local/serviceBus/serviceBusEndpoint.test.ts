/** Starting and stopping the endpoint, and its default entities (the project's queue and topic). */
import { ServiceBusClient } from '@azure/service-bus';
import { EVENTS_TOPIC, JOBS_QUEUE } from '../../../shared/constants';
import { startServiceBusEndpoint } from '../../../local/serviceBus/serviceBusEndpoint';

test('without entities options it serves the project queue (sessions) and topic', async () => {
  const endpoint = await startServiceBusEndpoint({ port: 0 });
  const client = new ServiceBusClient(endpoint.connectionString);
  try {
    await client
      .createSender(JOBS_QUEUE)
      .sendMessages({ body: { jobId: 'j1' }, messageId: 'j1', sessionId: 'sim-001' });
    const jobs = await client.acceptNextSession(JOBS_QUEUE);
    const [job] = await jobs.receiveMessages(1, { maxWaitTimeInMs: 1000 });
    expect([jobs.sessionId, job.messageId, job.body]).toEqual(['sim-001', 'j1', { jobId: 'j1' }]);
    expect(job.lockedUntilUtc!.getTime() - Date.now()).toBeGreaterThan(50_000);
    await jobs.completeMessage(job);

    await client.createSender(EVENTS_TOPIC).sendMessages({ body: { kind: 'stale' } });
    const automation = client.createReceiver(EVENTS_TOPIC, 'automation', { receiveMode: 'receiveAndDelete' });
    expect((await automation.receiveMessages(1, { maxWaitTimeInMs: 1000 }))[0].body).toEqual({ kind: 'stale' });
  } finally {
    await client.close();
    await endpoint.close();
  }
});

test('a port in use fails the start', async () => {
  const first = await startServiceBusEndpoint({ port: 0, entities: {} });
  try {
    await expect(startServiceBusEndpoint({ port: first.port, entities: {} })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  } finally {
    await first.close();
  }
});

test('invalid entities fail the start with the field named', async () => {
  await expect(
    startServiceBusEndpoint({ port: 0, entities: { queues: [{ name: 'q', properties: { lockDuration: '1m' } }] } }),
  ).rejects.toThrow("options.entities: queues[0].properties.lockDuration '1m' is not an ISO-8601 duration");
  await expect(startServiceBusEndpoint({ port: 0, entitiesPath: '/no/such/entities.json' })).rejects.toThrow(
    'cannot read entities file /no/such/entities.json',
  );
});

test('close ends client connections; the SDK sees the link go away', async () => {
  const endpoint = await startServiceBusEndpoint({ port: 0, entities: { queues: [{ name: 'q' }] } });
  const client = new ServiceBusClient(endpoint.connectionString, {
    retryOptions: { maxRetries: 0, timeoutInMs: 2000 },
  });
  try {
    const receiver = client.createReceiver('q');
    await receiver.peekMessages(1);
    const started = Date.now();
    await endpoint.close();
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(receiver.peekMessages(1)).rejects.toBeDefined();
  } finally {
    await client.close();
  }
});
