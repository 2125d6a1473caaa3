import { performance } from 'node:perf_hooks';

/** The value below which `q` (0..1) of the sorted samples fall (nearest rank). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

/** The median of unsorted samples. */
export function median(samples: readonly number[]): number {
  return percentile(
    [...samples].sort((a, b) => a - b),
    0.5,
  );
}

/** Items per second. */
export function perSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (count * 1000) / elapsedMs : 0;
}

/** Runs `work` and returns its result with the milliseconds it took. */
export async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await work();
  return { result, ms: performance.now() - started };
}

/** A throughput with per-call latencies, from `count` sequential calls. */
export interface LatencyFigures {
  perSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** Calls `call(i)` for i in 0..count-1, one at a time, timing each. */
export async function sequentialLatency(
  count: number,
  call: (index: number) => Promise<unknown>,
): Promise<LatencyFigures> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let index = 0; index < count; index++) {
    const before = performance.now();
    await call(index);
    latencies.push(performance.now() - before);
  }
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return {
    perSec: perSecond(count, elapsed),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}
