import { fold } from '../projections/projection.ts';
import { openLedger } from '../src/open-ledger.ts';
import { replayProjection } from './replay-projection.ts';

/**
 * The replay workload alone in a fresh process, so its peak RSS is the replay's own:
 * `BENCH_DATABASE_URL=… node --import tsx bench/replay-worker.ts` prints one JSON line.
 */

/** What the worker prints. */
export interface ReplayWorkerResult {
  events: number;
  jobs: number;
  eventsPerSec: number;
  elapsedMs: number;
  peakRssMb: number;
  /** RSS once the ledger is open, before the replay: node, tsx and the loaded modules. */
  startRssMb: number;
}

const databaseUrl = process.env.BENCH_DATABASE_URL;
if (!databaseUrl) throw new Error('BENCH_DATABASE_URL is not set');

const ledger = await openLedger({ databaseUrl, migrate: false });
const startRssMb = process.memoryUsage().rss / 2 ** 20;
try {
  const projection = replayProjection();
  // Warm-up: one page through the same query and reducers, so the timed pass runs JIT'd code.
  fold(projection, (await ledger.readAll({ limit: 10_000 })).events);
  const replayed = await ledger.replay(projection);
  const result: ReplayWorkerResult = {
    events: replayed.events,
    jobs: Object.keys(replayed.state).length,
    eventsPerSec: replayed.eventsPerSecond,
    elapsedMs: replayed.elapsedMs,
    // maxRSS is in kilobytes.
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    startRssMb,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await ledger.close();
}
