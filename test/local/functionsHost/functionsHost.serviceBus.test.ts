import { ServiceBusClient, type ServiceBusSender } from '@azure/service-bus';
import path from 'node:path';
import { startServiceBusEndpoint, type ServiceBusEndpoint } from '../../../local/serviceBus/serviceBusEndpoint';
import { startFunctionsHostProcess, type HostProcess } from './support/functionsHostProcess';

const SERVICE_BUS_APP = path.join(__dirname, 'fixtures', 'serviceBusApp');
const QUEUE = 'jobs-under-test';
const PLAIN_QUEUE = 'plain-jobs-under-test';

interface DeliveryRecord {
  body: { seq?: number; delayMs?: number; failOnFirstDelivery?: boolean; label?: string };
  messageId: string;
  sessionId: string;
  deliveryCount: number;
  sequenceNumber: number;
  enqueuedTimeUtc: string;
  applicationProperties: Record<string, unknown>;
  contentType: string | null;
  invocationId: string;
  started: number;
  ended: number;
}

describe('local Functions host Service Bus trigger (real SDK against the local endpoint)', () => {
  let endpoint: ServiceBusEndpoint;
  let host: HostProcess;
  let baseUrl: string;
  let client: ServiceBusClient;
  let sender: ServiceBusSender;

  beforeAll(async () => {
    endpoint = await startServiceBusEndpoint({
      port: 0,
      entities: {
        queues: [
          { name: QUEUE, properties: { requiresSession: true, maxDeliveryCount: 5, lockDuration: 'PT30S' } },
          { name: PLAIN_QUEUE, properties: { maxDeliveryCount: 5, lockDuration: 'PT30S' } },
        ],
      },
    });
    ({ host, baseUrl } = await startFunctionsHostProcess({
      appRoot: SERVICE_BUS_APP,
      env: { ServiceBusConnection: endpoint.connectionString, JOBS_QUEUE: QUEUE, PLAIN_QUEUE },
      args: ['--quiet-invocations'],
    }));
    client = new ServiceBusClient(endpoint.connectionString);
    sender = client.createSender(QUEUE);
  }, 90_000);

  afterAll(async () => {
    await sender?.close();
    await client?.close();
    await host?.stop();
    await endpoint?.close();
  });

  const records = async (): Promise<{ records: DeliveryRecord[]; maxActive: number }> =>
    (await (await fetch(`${baseUrl}/api/records`)).json()) as { records: DeliveryRecord[]; maxActive: number };

  const recordsWhere = async (
    what: string,
    predicate: (record: DeliveryRecord) => boolean,
    count: number,
    timeoutMs = 20_000,
  ): Promise<DeliveryRecord[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matching = (await records()).records.filter(predicate);
      if (matching.length >= count) {
        return matching;
      }
      if (Date.now() > deadline) {
        throw new Error(`${what}: ${matching.length} of ${count} deliveries arrived\n${host.output()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const recordsOf = (sessionId: string, count: number): Promise<DeliveryRecord[]> =>
    recordsWhere(`session ${sessionId}`, (record) => record.sessionId === sessionId, count);

  it('passes the body and the trigger metadata as Azure provides them', async () => {
    const before = Date.now();
    await sender.sendMessages({
      body: { label: 'metadata' },
      messageId: 'job-metadata-1',
      sessionId: 'session-metadata',
      contentType: 'application/json',
      applicationProperties: { origin: 'test', attempt: 3 },
    });
    const [record] = await recordsOf('session-metadata', 1);
    expect(record.body).toEqual({ label: 'metadata' });
    expect(record.messageId).toBe('job-metadata-1');
    expect(record.sessionId).toBe('session-metadata');
    expect(record.deliveryCount).toBe(1);
    expect(typeof record.sequenceNumber).toBe('number');
    expect(record.contentType).toBe('application/json');
    expect(record.applicationProperties).toEqual({ origin: 'test', attempt: 3 });
    const enqueued = Date.parse(record.enqueuedTimeUtc);
    expect(enqueued).toBeGreaterThanOrEqual(before - 1_000);
    expect(enqueued).toBeLessThanOrEqual(Date.now());
  });

  it('handles one session in order, one message at a time', async () => {
    const sessionId = 'session-order';
    await sender.sendMessages(
      Array.from({ length: 10 }, (_, seq) => ({ body: { seq, delayMs: 20 }, sessionId, messageId: `order-${seq}` })),
    );
    const delivered = await recordsOf(sessionId, 10);
    expect(delivered.map((record) => record.body.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let index = 1; index < delivered.length; index++) {
      expect(delivered[index].started).toBeGreaterThanOrEqual(delivered[index - 1].ended);
    }
  });

  it('handles several sessions in parallel', async () => {
    const sessions = ['parallel-a', 'parallel-b', 'parallel-c'];
    const startedAt = Date.now();
    for (const sessionId of sessions) {
      await sender.sendMessages(
        Array.from({ length: 3 }, (_, seq) => ({
          body: { seq, delayMs: 400 },
          sessionId,
          messageId: `${sessionId}-${seq}`,
        })),
      );
    }
    const delivered = await Promise.all(sessions.map((sessionId) => recordsOf(sessionId, 3)));
    const elapsed = Date.now() - startedAt;
    for (const perSession of delivered) {
      expect(perSession.map((record) => record.body.seq)).toEqual([0, 1, 2]);
    }
    const all = delivered.flat();
    const overlapping = all.some((a) =>
      all.some((b) => a !== b && a.sessionId !== b.sessionId && a.started < b.ended && b.started < a.ended),
    );
    expect(overlapping).toBe(true);
    // Sequentially the nine 400 ms deliveries would take 3.6 s.
    expect(elapsed).toBeLessThan(3_400);
    expect((await records()).maxActive).toBeLessThanOrEqual(4);
  });

  it('abandons the message when the function throws, so it comes back with deliveryCount 2', async () => {
    await sender.sendMessages({
      body: { failOnFirstDelivery: true },
      sessionId: 'session-retry',
      messageId: 'job-retry-1',
    });
    const delivered = await recordsOf('session-retry', 2);
    expect(delivered.map((record) => [record.messageId, record.deliveryCount])).toEqual([
      ['job-retry-1', 1],
      ['job-retry-1', 2],
    ]);
    await host.waitForOutput(new RegExp(`Executed 'runJob' \\(Failed, Id=${delivered[0].invocationId}`));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect((await recordsOf('session-retry', 2)).length).toBe(2);
  });

  it('runs a queue without sessions too: complete on success, abandon on a throw', async () => {
    const plainSender = client.createSender(PLAIN_QUEUE);
    try {
      await plainSender.sendMessages([
        { body: { label: 'plain-ok' }, messageId: 'plain-1' },
        { body: { label: 'plain-retry', failOnFirstDelivery: true }, messageId: 'plain-2' },
      ]);
      const delivered = await recordsWhere(
        'plain queue',
        (record) => record.body.label?.startsWith('plain') ?? false,
        3,
      );
      expect(delivered.map((record) => [record.messageId, record.deliveryCount]).sort()).toEqual([
        ['plain-1', 1],
        ['plain-2', 1],
        ['plain-2', 2],
      ]);
      expect(delivered.every((record) => record.sessionId === undefined)).toBe(true);
    } finally {
      await plainSender.close();
    }
  });

  it('on SIGTERM finishes and completes the message in hand, then exits 0', async () => {
    await sender.sendMessages({
      body: { label: 'shutdown', delayMs: 1_500 },
      sessionId: 'session-shutdown',
      messageId: 'job-shutdown',
    });
    await host.waitForOutput(/runJob \([0-9a-f-]+\) started session-shutdown shutdown/);
    const startedAt = Date.now();
    expect(await host.stop()).toBe(0);
    const stopMs = Date.now() - startedAt;
    // It waited for the handler (about 1.5 s from its start) but not for idle receivers.
    expect(stopMs).toBeGreaterThanOrEqual(1_000);
    expect(stopMs).toBeLessThan(10_000);
    expect(host.output()).not.toMatch(/completing message .* failed/);
    expect(host.output()).toContain('Functions host stopped.');

    const receiver = await client.acceptSession(QUEUE, 'session-shutdown');
    try {
      expect(await receiver.receiveMessages(1, { maxWaitTimeInMs: 1_000 })).toEqual([]);
    } finally {
      await receiver.close();
    }
  });
});
