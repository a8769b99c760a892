/**
 * The connector's background event queue: order, batching of what accumulates during a send, best effort on
 * failure, and the bound on what may wait.
 */
import { EventQueue } from '../../connector/eventQueue';
import { LogFields, Logger } from '../../connector/logger';
import { EVENTS_PER_SEND, EventPublisher, TwinEvent, connectionEvent } from '../../shared/twinEvents';

const event = (i: number): TwinEvent => connectionEvent(`dev-${i}`, 'connected', new Date(i * 1000).toISOString());

/** A publisher whose sends the test completes or fails one at a time. */
class ScriptedPublisher implements EventPublisher {
  readonly sends: TwinEvent[][] = [];
  private waiting: { resolve: () => void; reject: (error: Error) => void }[] = [];

  publish(events: readonly TwinEvent[]): Promise<void> {
    this.sends.push([...events]);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Resolves once `count` sends have started. */
  async started(count: number): Promise<void> {
    for (let i = 0; i < 50 && this.sends.length < count; i++) await new Promise((r) => setImmediate(r));
    expect(this.sends).toHaveLength(count);
  }

  async settleNext(error?: Error): Promise<void> {
    for (let i = 0; i < 50 && this.waiting.length === 0; i++) await new Promise((r) => setImmediate(r));
    const next = this.waiting.shift();
    if (!next) throw new Error('no send is waiting');
    if (error) next.reject(error);
    else next.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

function capturingLog(): { log: Logger; warnings: { message: string; fields?: LogFields }[] } {
  const warnings: { message: string; fields?: LogFields }[] = [];
  return {
    warnings,
    log: { info: () => {}, error: () => {}, warn: (message, fields) => warnings.push({ message, fields }) },
  };
}

describe('EventQueue', () => {
  it('sends events emitted in one turn together, and what arrives during a send in the next, in order', async () => {
    const publisher = new ScriptedPublisher();
    const queue = new EventQueue(publisher, { log: capturingLog().log, now: Date.now });
    queue.emit([event(1)]);
    queue.emit([event(2), event(3)]);
    await publisher.started(1);
    expect(publisher.sends).toEqual([[event(1), event(2), event(3)]]);

    queue.emit([event(4)]);
    queue.emit([event(5)]);
    await publisher.settleNext();
    await publisher.started(2);
    expect(publisher.sends[1]).toEqual([event(4), event(5)]);
    await publisher.settleNext();
    await queue.drain();
    expect(queue.stats).toEqual({ emitted: 5, published: 5, dropped: 0 });
  });

  it(`splits a backlog into sends of ${EVENTS_PER_SEND}`, async () => {
    const publisher = new ScriptedPublisher();
    const queue = new EventQueue(publisher, { log: capturingLog().log, now: Date.now });
    queue.emit(Array.from({ length: EVENTS_PER_SEND * 2 + 1 }, (_, i) => event(i)));
    for (let i = 0; i < 3; i++) await publisher.settleNext();
    await queue.drain();
    expect(publisher.sends.map((s) => s.length)).toEqual([EVENTS_PER_SEND, EVENTS_PER_SEND, 1]);
    expect(publisher.sends.flat()).toEqual(Array.from({ length: EVENTS_PER_SEND * 2 + 1 }, (_, i) => event(i)));
  });

  it('drops the events of a failed send with a warning and goes on with the next', async () => {
    const publisher = new ScriptedPublisher();
    const { log, warnings } = capturingLog();
    const queue = new EventQueue(publisher, { log, now: Date.now });
    queue.emit([event(1)]);
    await publisher.started(1);
    queue.emit([event(2)]);
    await publisher.settleNext(new Error('amqp:connection:forced'));
    await publisher.settleNext();
    await queue.drain();
    expect(queue.stats).toEqual({ emitted: 2, published: 1, dropped: 1 });
    expect(warnings.map((w) => w.message)).toEqual([expect.stringContaining('amqp:connection:forced')]);
  });

  it('keeps at most maxQueued events waiting, dropping the oldest', async () => {
    const publisher = new ScriptedPublisher();
    const { log, warnings } = capturingLog();
    const queue = new EventQueue(publisher, { log, now: Date.now, maxQueued: 3 });
    queue.emit([event(1)]);
    await publisher.started(1);
    queue.emit([event(2), event(3), event(4), event(5), event(6)]);
    expect(queue.pending).toBe(3);
    await publisher.settleNext();
    await publisher.settleNext();
    await queue.drain();
    expect(publisher.sends).toEqual([[event(1)], [event(4), event(5), event(6)]]);
    expect(queue.stats).toEqual({ emitted: 6, published: 4, dropped: 2 });
    expect(warnings[0]).toMatchObject({ fields: { dropped: 2 } });
  });

  it('gives up draining after the timeout, saying how many events still wait', async () => {
    const publisher = new ScriptedPublisher();
    const { log, warnings } = capturingLog();
    const queue = new EventQueue(publisher, { log, now: Date.now });
    queue.emit([event(1)]);
    await publisher.started(1);
    queue.emit([event(2), event(3)]);
    await expect(queue.drain(20)).resolves.toBe(false);
    expect(warnings).toEqual([expect.objectContaining({ fields: { waiting: 2, timeoutMs: 20 } })]);
    await publisher.settleNext();
    await publisher.settleNext();
    await expect(queue.drain(1000)).resolves.toBe(true);
  });

  it('drains at once when nothing was emitted', async () => {
    const queue = new EventQueue(new ScriptedPublisher(), { log: capturingLog().log, now: Date.now });
    await expect(queue.drain()).resolves.toBe(true);
  });
});
