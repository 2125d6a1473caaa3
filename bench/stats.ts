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

/** The median and the 99th percentile of a set of latencies. */
export interface PercentileFigures {
  p50Ms: number;
  p99Ms: number;
}

/** The p50 and p99 of unsorted latency samples (nearest rank); the samples are left as they are. */
export function percentileFigures(samples: readonly number[]): PercentileFigures {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
}

/** A throughput with per-call latencies, from `count` sequential calls. */
export interface LatencyFigures extends PercentileFigures {
  perSec: number;
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
  return { perSec: perSecond(count, elapsed), ...percentileFigures(latencies) };
}

/**
 * Runs every side once a round for `rounds` rounds, each round starting one side further
 * along, and returns each side's results in round order. On a busy shared machine drift
 * between back-to-back runs swamps the difference measured; rotating lets it hit every side
 * alike. With two sides this alternates which goes first.
 */
export async function rotatingRounds<Results extends readonly unknown[]>(
  rounds: number,
  sides: { readonly [Side in keyof Results]: (round: number) => Promise<Results[Side]> },
): Promise<{ -readonly [Side in keyof Results]: Results[Side][] }> {
  const results = sides.map((): unknown[] => []);
  for (let round = 0; round < rounds; round++) {
    for (const side of rotation(sides.length, round)) {
      results[side]!.push(await sides[side]!(round));
    }
  }
  return results as { -readonly [Side in keyof Results]: Results[Side][] };
}

/** The side indices 0..count-1 in the order round `round` runs them: starting at `round % count`. */
export function rotation(count: number, round: number): number[] {
  return Array.from({ length: count }, (_, offset) => (offset + round) % count);
}
