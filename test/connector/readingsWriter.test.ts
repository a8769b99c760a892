import { Reading, TwinDocument } from '../../shared/twin';
import { ApplyManyResult, ApplyReadingsResult, DeviceReadings, TwinPage, TwinStore } from '../../shared/twinStore';
import { silentLogger } from '../../connector/logger';
import { MAX_DEVICES_PER_CALL, ReadingsWriter } from '../../connector/readingsWriter';

/** A store that records each device write and each call; calls take `delayMs` (or fail on demand). */
class RecordingStore implements TwinStore {
  readonly calls: { deviceId: string; readings: Reading[] }[] = [];
  readonly callSizes: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  failNext = 0;
  delayMs = 0;

  async applyReadingsMany(writes: readonly DeviceReadings[]): Promise<ApplyManyResult> {
    this.callSizes.push(writes.length);
    for (const w of writes) this.calls.push({ deviceId: w.deviceId, readings: [...w.readings] });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('store unavailable');
      }
      const results = writes.map((w) => ({
        found: true,
        changed: w.readings.map((r) => r.name),
        refreshed: [],
        requests: 0,
      }));
      return { results, requests: 2 };
    } finally {
      this.inFlight--;
    }
  }
  applyReadings(deviceId: string, readings: readonly Reading[]): Promise<ApplyReadingsResult> {
    throw new Error(`not used (${deviceId}, ${readings.length})`);
  }
  get(): Promise<TwinDocument | undefined> {
    throw new Error('not used');
  }
  create(): Promise<{ twin: TwinDocument; created: boolean }> {
    throw new Error('not used');
  }
  delete(): Promise<boolean> {
    throw new Error('not used');
  }
  update(): Promise<TwinDocument | undefined> {
    throw new Error('not used');
  }
  query(): Promise<TwinPage> {
    throw new Error('not used');
  }
  findDue(): Promise<TwinPage> {
    throw new Error('not used');
  }
}

const reading = (name: string, value: number, ms: number): Reading => ({
  name,
  value,
  time: new Date(ms).toISOString(),
  source: 'notify',
});

describe('ReadingsWriter', () => {
  const writer = (store: RecordingStore, batchMs = 30, maxConcurrentWrites = 4) =>
    new ReadingsWriter({ sink: store, batchMs, maxConcurrentWrites, log: silentLogger, now: Date.now });

  it('writes readings arriving within the window together, keeping the newest per property, devices in one call', async () => {
    const store = new RecordingStore();
    const w = writer(store);
    w.add('d1', reading('batteryLevel', 1, 1000));
    w.add('d1', reading('memoryFree', 2, 1001));
    w.add('d1', reading('batteryLevel', 3, 1002));
    w.add('d1', reading('batteryLevel', 0, 999)); // older than what is pending: superseded
    w.add('d2', reading('batteryLevel', 4, 1000));
    await w.flush();
    expect(store.callSizes).toEqual([2]);
    const d1 = store.calls.find((c) => c.deviceId === 'd1');
    expect(d1?.readings.map((r) => [r.name, r.value])).toEqual([
      ['batteryLevel', 3],
      ['memoryFree', 2],
    ]);
    expect(w.stats).toMatchObject({ received: 5, persisted: 3, superseded: 2, writes: 1, deviceWrites: 2 });
    await w.close();
  });

  it('keeps one write per device in flight and collects what arrives meanwhile into the next', async () => {
    const store = new RecordingStore();
    store.delayMs = 50;
    const w = writer(store, 5);
    w.add('d1', reading('batteryLevel', 1, 1000));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the first write is running
    for (let i = 0; i < 10; i++) w.add('d1', reading(i % 2 ? 'memoryFree' : 'batteryLevel', i, 2000 + i));
    await w.flush();
    expect(store.calls).toHaveLength(2);
    expect(store.maxInFlight).toBe(1);
    expect(store.calls[1].readings).toHaveLength(2);
    await w.close();
  });

  it('bounds concurrent store calls and the devices per call', async () => {
    const store = new RecordingStore();
    store.delayMs = 20;
    const w = writer(store, 1, 2);
    const devices = 2 * MAX_DEVICES_PER_CALL + 50;
    for (let d = 0; d < devices; d++) w.add(`d${d}`, reading('batteryLevel', d, 1000));
    await w.flush();
    expect(store.callSizes).toEqual([MAX_DEVICES_PER_CALL, MAX_DEVICES_PER_CALL, 50]);
    expect(store.maxInFlight).toBe(2);
    await w.close();
  });

  it('retries a failed write, merged with newer readings, and loses nothing', async () => {
    const store = new RecordingStore();
    store.failNext = 2;
    const w = writer(store, 5);
    w.add('d1', reading('batteryLevel', 1, 1000));
    w.add('d1', reading('memoryFree', 5, 1000));
    await new Promise((resolve) => setTimeout(resolve, 30));
    w.add('d1', reading('batteryLevel', 2, 3000));
    await w.flush();
    const last = store.calls[store.calls.length - 1];
    expect(last.readings.map((r) => [r.name, r.value]).sort()).toEqual([
      ['batteryLevel', 2],
      ['memoryFree', 5],
    ]);
    expect(w.stats.failedWrites).toBe(2);
    expect(w.stats.lost).toBe(0);
    expect(w.pending).toBe(0);
    await w.close();
  });
});
