/**
 * Readings written from a worker thread (what connector/main.ts runs): the connector receives notifications on its
 * main thread and the twin store's bulk writes happen on the sink's thread, against the local Cosmos server.
 */
import path from 'node:path';
import { EMULATOR_KEY } from '../../local/cosmosServer';
import { newTwin, observedProperty } from '../../shared/twin';
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { silentLogger } from '../../connector/logger';
import { RunningConnector, startConnector } from '../../connector/startConnector';
import { ThreadedReadingsSink } from '../../connector/threadedReadingsSink';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';
import { testSettings } from './support/connectorHarness';
import { TestDevice } from './support/testDevice';
import { uniformObservation } from '../support/observation';

const BOOTSTRAP = path.join(__dirname, 'support', 'tsWorkerBootstrap.js');
const DATABASE = 'threaded-sink-test';

describe('ThreadedReadingsSink', () => {
  let cosmos: TestCosmos;
  let store: CosmosTwinStore;
  let sink: ThreadedReadingsSink;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosTwinStore(await openTwinsContainer(cosmos.client, DATABASE), 93);
    sink = await ThreadedReadingsSink.start({
      cosmos: {
        endpoint: cosmos.server.endpoint,
        databaseName: DATABASE,
        key: EMULATOR_KEY,
        trustedCertificatePath: cosmos.server.certPath,
      },
      graceSeconds: 93,
      observation: uniformObservation({ pmin: 7, pmax: 77 }),
      script: BOOTSTRAP,
    });
  }, 30_000);
  afterAll(async () => {
    await sink.close();
    await cosmos.close();
  });

  it('writes readings of several devices from its thread, with the observation defaults it was started with', async () => {
    const now = new Date().toISOString();
    for (const id of ['t1', 't2']) {
      await store.create(newTwin(id, {}, now));
      await store.update(id, (t) => ({
        ...t,
        deviceProperties: { batteryLevel: observedProperty({ pmin: 1, pmax: 9 }, now) },
      }));
    }
    const later = new Date(Date.now() + 1000).toISOString();
    const { results } = await sink.applyReadingsMany([
      { deviceId: 't1', readings: [{ name: 'batteryLevel', value: 12, time: later, source: 'notify' }] },
      { deviceId: 't2', readings: [{ name: 'timezone', value: 'UTC', time: later, source: 'notify' }] },
      { deviceId: 'nobody', readings: [{ name: 'timezone', value: 'UTC', time: later, source: 'notify' }] },
    ]);
    expect(results.map((r) => r.found)).toEqual([true, true, false]);
    expect((await store.get('t1'))?.deviceProperties.batteryLevel.value).toBe(12);
    expect((await store.get('t2'))?.deviceProperties.timezone).toMatchObject({ value: 'UTC', pmin: 7, pmax: 77 });
  });

  it('serves a connector: notifications received on the main thread reach the twin', async () => {
    await store.create(newTwin('threaded-dev', {}, new Date().toISOString()));
    const connector: RunningConnector = await startConnector({
      store,
      readingsSink: sink,
      config: testSettings(),
      log: silentLogger,
    });
    const device = await TestDevice.start({ host: '127.0.0.1', port: connector.coapPort });
    try {
      device.setText('/3/0/9', 44);
      await device.register('threaded-dev', { links: '</3/0>' });
      await device.waitForObservations(['/3/0/9']);
      device.notify('/3/0/9', { payload: Buffer.from('45'), sequence: 7 });
      const deadline = Date.now() + 5000;
      while ((await store.get('threaded-dev'))?.deviceProperties.batteryLevel?.value !== 45) {
        if (Date.now() > deadline) throw new Error('the notification did not reach the twin');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await connector.flush(); // the twin may show the value before the thread's answer reaches the stats
      expect(connector.stats().readings.persisted).toBeGreaterThanOrEqual(1);
    } finally {
      await device.close();
      await connector.close();
    }
  });
});
