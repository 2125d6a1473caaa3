import { fold } from '../projections/projection.ts';
import { openLedger } from '../src/open-ledger.ts';
import { batchAppend } from './append-workloads.ts';
import type { JobBatch } from './append-workloads.ts';
import { jobEvents, jobIds } from './generate-events.ts';
import { replayProjection } from './replay-projection.ts';
import { seedJob } from './read-workloads.ts';
import type { BenchSizes } from './sizes.ts';

/** The embedded store's figures, on a throwaway in-memory PGlite. */
export interface PgliteFigures {
  batchAppendPerSec: number;
  replayPerSec: number;
}

/**
 * Seeds a replay log, replays it through the same projections as on PostgreSQL, then
 * appends batches to the same log. PGlite runs in this process, so there is no RSS figure.
 */
export async function pgliteWorkloads(sizes: BenchSizes): Promise<PgliteFigures> {
  const ledger = await openLedger({ dataDir: 'memory://' });
  try {
    for (const jobId of jobIds('pglite-replay', sizes.pgliteReplayJobs)) {
      await seedJob(ledger, jobId, sizes.eventsPerReplayJob);
    }
    const projection = replayProjection();
    // Warm-up: one page through the same query and reducers.
    fold(projection, (await ledger.readAll({ limit: 10_000 })).events);
    const replayed = await ledger.replay(projection);

    const batch = (prefix: string, count: number): JobBatch[] =>
      jobIds(prefix, count).map((jobId) => ({
        jobId,
        events: jobEvents(jobId, sizes.eventsPerBatch),
      }));
    await batchAppend(ledger, batch('pglite-warm', 2));
    const batchAppendPerSec = await batchAppend(
      ledger,
      batch('pglite-batch', sizes.pgliteBatchJobs),
    );
    return { batchAppendPerSec, replayPerSec: replayed.eventsPerSecond };
  } finally {
    await ledger.close();
  }
}
