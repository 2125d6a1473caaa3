import { fileURLToPath } from 'node:url';
import { runBenchChild } from './child.ts';
import type { ReplayWorkerResult } from './replay-worker.ts';

const workerPath = fileURLToPath(new URL('./replay-worker.ts', import.meta.url));

/**
 * The replay's live state for 1M events is ~60 MB, but V8 lets an uncapped heap fill with
 * garbage to several times that before it collects; a cap (same speed, measured) shows
 * the memory a replay needs rather than what V8 would take on a 24 GB machine.
 */
export const replayHeapCapMb = 256;

/** Runs the replay workload in a child process and returns what it reports; `signal` kills it. */
export function replayInChild(
  databaseUrl: string,
  signal: AbortSignal,
): Promise<ReplayWorkerResult> {
  return runBenchChild<ReplayWorkerResult>(workerPath, {
    nodeArgs: [`--max-old-space-size=${replayHeapCapMb}`],
    // The URL goes by environment, not argv, so a password never shows in `ps`.
    env: { BENCH_DATABASE_URL: databaseUrl },
    signal,
  });
}
