import { InvocationContext } from '@azure/functions';
import { CosmosTwinStore, openTwinsContainer } from '../../shared/cosmosTwinStore';
import { newTwin, observedProperty } from '../../shared/twin';
import { EventPublisher, TwinEvent } from '../../shared/twinEvents';
import { runStalenessSweep } from '../../functions/flagStaleProperties';
import { TestCosmos, startTestCosmos } from '../support/localCosmos';

const GRACE = 93;
const T0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

class RecordingPublisher implements EventPublisher {
  published: TwinEvent[] = [];
  constructor(private readonly failure?: Error) {}
  async publish(events: readonly TwinEvent[]): Promise<void> {
    if (this.failure) throw this.failure;
    this.published.push(...events);
  }
}

function recordingContext(): { context: InvocationContext; lines: string[] } {
  const lines: string[] = [];
  const context = new InvocationContext({
    functionName: 'flagStaleProperties',
    logHandler: (level, ...args) => lines.push(`${level}: ${args.map(String).join(' ')}`),
  });
  return { context, lines };
}

describe('the flagStaleProperties timer function', () => {
  let cosmos: TestCosmos;
  let store: CosmosTwinStore;

  beforeAll(async () => {
    cosmos = await startTestCosmos();
    store = new CosmosTwinStore(await openTwinsContainer(cosmos.client, 'timer-function'), GRACE);
    for (const deviceId of ['dev-1', 'dev-2']) {
      await store.create(newTwin(deviceId, {}, at(0)));
      await store.update(deviceId, (twin) => ({
        ...twin,
        connection: { state: 'connected', since: at(0) },
        deviceProperties: { batteryLevel: observedProperty({ pmin: 1, pmax: 60 }, at(0)) },
      }));
    }
  });
  afterAll(() => cosmos.close());

  it('flags, publishes one propertyStale event per flag, and logs a summary', async () => {
    const publisher = new RecordingPublisher();
    const { context, lines } = recordingContext();
    await runStalenessSweep(
      { store, publisher: async () => publisher, now: at(60 + GRACE + 1), graceSeconds: GRACE },
      context,
    );
    expect(publisher.published.map((e) => [e.deviceId, e.kind, e.property]).sort()).toEqual([
      ['dev-1', 'propertyStale', 'batteryLevel'],
      ['dev-2', 'propertyStale', 'batteryLevel'],
    ]);
    expect(lines.some((line) => /2 due twins, 2 properties flagged on 2 twins/.test(line))).toBe(true);
  });

  it('keeps the flags and logs an error when the events cannot be published', async () => {
    await store.applyReadings('dev-1', [{ name: 'batteryLevel', value: 5, time: at(500), source: 'notify' }]);
    const { context, lines } = recordingContext();
    const summary = await runStalenessSweep(
      {
        store,
        publisher: async () => new RecordingPublisher(new Error('Service Bus is down')),
        now: at(500 + 60 + GRACE + 1),
        graceSeconds: GRACE,
      },
      context,
    );
    expect(summary.flaggedProperties).toBe(1);
    expect((await store.get('dev-1'))?.deviceProperties.batteryLevel.stale).toBe(true);
    expect(lines.some((line) => line.startsWith('error') && line.includes('Service Bus is down'))).toBe(true);
  });
});
