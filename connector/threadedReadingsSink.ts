/**
 * Twin writes of readings on a worker thread. The connector's main thread reads UDP, and libuv reads at most 32
 * datagrams per event-loop turn: JSON, TLS and SDK work of large Cosmos bulk writes on the same thread make the turns
 * long and the socket overflows (measured: 1,000 devices sending 8,700 notifications/s, 2,300/s taken in with the
 * writes in-process, all of them with the writes on this thread). So the writes run here, on the other core.
 *
 * Contract: `applyReadingsMany` as `TwinStore` defines it, with the observation defaults given at start.
 * `close()` waits for calls in flight, then ends the thread.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ObservationDefaults } from '../shared/catalog';
import { CosmosConfig } from '../shared/config';
import { ApplyManyResult, DeviceReadings } from '../shared/twinStore';
import { ReadingsSink } from './readingsWriter';
import { ApplyManyReply, ApplyManyRequest, ReadingsSinkThreadData, ThreadStatus } from './readingsSinkThread';

export interface ThreadedReadingsSinkOptions {
  cosmos: CosmosConfig;
  graceSeconds: number;
  /** pmin/pmax of a property a reading brings before its twin has an entry for it. */
  observation: ObservationDefaults;
  /** The thread's script (default: the compiled readingsSinkThread.js next to this file). */
  script?: string;
  /** Called when the thread ends without `close()` (a crash): calls fail from then on. */
  onUnexpectedExit?: (exitCode: number) => void;
}

export class ThreadedReadingsSink implements ReadingsSink {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: ApplyManyResult) => void; reject: (e: Error) => void }>();
  private readonly inFlight = new Set<Promise<ApplyManyResult>>();
  private exited = false;
  private closing = false;

  private constructor(
    private readonly worker: Worker,
    onUnexpectedExit?: (exitCode: number) => void,
  ) {
    worker.on('message', (reply: ApplyManyReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if ('error' in reply) waiter.reject(new Error(reply.error));
      else waiter.resolve(reply.result);
    });
    worker.on('exit', (code) => {
      this.exited = true;
      for (const waiter of this.pending.values()) waiter.reject(new Error(`readings thread exited with code ${code}`));
      this.pending.clear();
      if (!this.closing) onUnexpectedExit?.(code);
    });
  }

  /** Starts the thread; resolves once its Cosmos container is open, rejects with the reason when it cannot. */
  static async start(options: ThreadedReadingsSinkOptions): Promise<ThreadedReadingsSink> {
    const workerData: ReadingsSinkThreadData = {
      cosmos: options.cosmos,
      graceSeconds: options.graceSeconds,
      observation: options.observation,
    };
    const worker = new Worker(options.script ?? path.join(__dirname, 'readingsSinkThread.js'), { workerData });
    const status = await new Promise<ThreadStatus>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`readings thread exited with code ${code} while starting`)));
    });
    worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
    if ('fatal' in status) {
      await worker.terminate();
      throw new Error(`readings thread could not open the twins container: ${status.fatal}`);
    }
    return new ThreadedReadingsSink(worker, options.onUnexpectedExit);
  }

  applyReadingsMany(writes: readonly DeviceReadings[]): Promise<ApplyManyResult> {
    if (this.exited) return Promise.reject(new Error('the readings thread has stopped'));
    const id = ++this.nextId;
    const request: ApplyManyRequest = { id, writes: [...writes] };
    const call = new Promise<ApplyManyResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(request);
    });
    this.inFlight.add(call);
    const forget = () => this.inFlight.delete(call);
    call.then(forget, forget);
    return call;
  }

  /** Waits for calls in flight, then stops the thread. */
  async close(): Promise<void> {
    this.closing = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (!this.exited) await this.worker.terminate();
  }
}
