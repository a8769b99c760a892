/**
 * The connector's readings thread (connector/readingsSinkThread.ts) as the benchmarks run it: the same thread, plus
 * a full garbage collection whenever a message arrives on the `COLLECT_GARBAGE_CHANNEL` broadcast channel. A memory
 * sample of the connector process collects both isolates first, so the thread's garbage is not counted as memory
 * per device. Needs node's --expose-gc, which a worker inherits from its process.
 */
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import '../connector/readingsSinkThread';

export const COLLECT_GARBAGE_CHANNEL = 'bench-collect-garbage';

if (!isMainThread) {
  const channel = new BroadcastChannel(COLLECT_GARBAGE_CHANNEL);
  channel.onmessage = () => (globalThis as { gc?: () => void }).gc?.();
  channel.unref();
}
