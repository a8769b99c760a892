/** Small statistics for benchmarks: medians and percentiles of latency samples, in milliseconds. */
import { readFileSync } from 'node:fs';

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

export const median = (samples: readonly number[]): number => percentile(samples, 50);

/** Runs `task` `total` times with at most `concurrency` in flight; returns each call's latency in ms. */
export async function measureConcurrent(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await task(i);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

export const fmt = (ms: number): string => `${ms.toFixed(2)} ms`;

/** Linux reports process CPU times in /proc in USER_HZ ticks, which the kernel ABI fixes at 100 per second. */
const LINUX_USER_HZ = 100;

/**
 * CPU time (user + system, all threads) a process has used so far, in ms, from `/proc/<pid>/stat`; 10 ms resolution.
 * Undefined where /proc is missing (not Linux) or the process is gone.
 */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / LINUX_USER_HZ;
  } catch {
    return undefined;
  }
}
