import { CompiledQuery } from 'kysely';
import { fold } from '../projections/projection.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { batchAppend, jobBatches, singleAppend } from './append-workloads.ts';
import type { JobBatch } from './append-workloads.ts';
import {
  createRawTable,
  insertRawRows,
  rawBatchInsert,
  rawKeysetRead,
  rawSingleInsert,
} from './baselines.ts';
import type { RawSql } from './baselines.ts';
import { jobIds, toRawRows } from './generate-events.ts';
import { replayProjection } from './replay-projection.ts';
import { seedJob } from './read-workloads.ts';
import type { BenchSizes } from './sizes.ts';
import { median, rotatingRounds } from './stats.ts';
import type { LatencyFigures } from './stats.ts';

/** The embedded store's figures beside the same raw SQL on the same PGlite, same run. */
export interface PgliteFigures {
  batchAppendPerSec: number;
  /** Raw unnest insert, 1,000 rows per statement. */
  rawBatchPerSec: number;
  replayPerSec: number;
  replayEvents: number;
  /** Raw keyset read of the whole raw copy, pages of 10,000. */
  rawReadPerSec: number;
  single: LatencyFigures;
  /** Raw single-row inserts. */
  rawSingle: LatencyFigures;
}

/**
 * Raw statements on the ledger's own PGlite instance. The ledger does not expose PGlite
 * itself, only its Kysely, which hands a compiled raw query straight to `pglite.query`:
 * the baseline pays the same driver as the ledger and nothing else of ours.
 */
function pgliteRawSql(ledger: Ledger): RawSql {
  return {
    query: (text, values = []) => ledger.db.executeQuery(CompiledQuery.raw(text, values)),
  };
}

function rawRowsOf(jobs: readonly JobBatch[]) {
  return jobs.flatMap((job) => toRawRows(job.jobId, job.events));
}

/**
 * Rounds of each baseline and its workload, alternating which goes first; every figure is
 * the median of its rounds. On a busy shared machine one pair measured back to back gave
 * ratios from 0.3 to 0.8 from run to run.
 */
const rounds = 3;

/** Each figure's median over the rounds. */
function medianLatency(figures: readonly LatencyFigures[]): LatencyFigures {
  return {
    perSec: median(figures.map((figure) => figure.perSec)),
    p50Ms: median(figures.map((figure) => figure.p50Ms)),
    p99Ms: median(figures.map((figure) => figure.p99Ms)),
  };
}

/**
 * The PostgreSQL suite's replay, batchAppend and singleAppend on a throwaway in-memory
 * PGlite, each beside its raw baseline (bench/baselines.ts) on the same instance and a raw
 * copy of `events`. PGlite runs in this process, so there is no RSS figure.
 */
export async function pgliteWorkloads(sizes: BenchSizes): Promise<PgliteFigures> {
  const ledger = await openLedger({ dataDir: 'memory://' });
  const raw = pgliteRawSql(ledger);
  try {
    await createRawTable(raw);
    for (const jobId of jobIds('pglite-replay', sizes.pgliteReplayJobs)) {
      await seedJob(ledger, jobId, sizes.eventsPerReplayJob, (events, firstVersion) =>
        insertRawRows(raw, toRawRows(jobId, events, firstVersion), 10_000),
      );
    }
    // As on PostgreSQL: readers of freshly loaded tables would otherwise set hint bits.
    await raw.query('vacuum analyze events');
    await raw.query('vacuum analyze raw_events');

    await rawKeysetRead(raw, 20_000);
    const projection = replayProjection();
    // Warm-up: one page through the same query and reducers.
    fold(projection, (await ledger.readAll({ limit: 10_000 })).events);
    const [rawReads, replays] = await rotatingRounds(rounds, [
      () => rawKeysetRead(raw),
      () => ledger.replay(projection),
    ]);
    const replayEvents = replays[0]!.events;
    const rawRows = rawReads.map((read) => read.rows);
    if (rawRows.some((rows) => rows !== replayEvents)) {
      throw new Error(
        `pglite replay saw ${replayEvents} events, the raw reads ${rawRows.join(', ')} rows`,
      );
    }

    const batches = (round: number) =>
      jobBatches(`pglite-batch-${round}`, sizes.pgliteBatchJobs, sizes.eventsPerBatch);
    await rawBatchInsert(raw, rawRowsOf(jobBatches('pglite-warm-raw', 2, sizes.eventsPerBatch)));
    await batchAppend(ledger, jobBatches('pglite-warm', 2, sizes.eventsPerBatch));
    const [rawBatches, batchAppends] = await rotatingRounds(rounds, [
      (round) => rawBatchInsert(raw, rawRowsOf(batches(round))),
      (round) => batchAppend(ledger, batches(round)),
    ]);

    const single = (round: number) =>
      jobBatches(`pglite-single-${round}`, 1, sizes.pgliteSingleCalls)[0]!;
    await rawSingleInsert(raw, rawRowsOf(jobBatches('pglite-warm-raw-single', 1, 200)));
    await singleAppend(ledger, jobBatches('pglite-warm-single', 1, 200)[0]!);
    const [rawSingles, singleAppends] = await rotatingRounds(rounds, [
      (round) => rawSingleInsert(raw, rawRowsOf([single(round)])),
      (round) => singleAppend(ledger, single(round)),
    ]);

    return {
      batchAppendPerSec: median(batchAppends),
      rawBatchPerSec: median(rawBatches),
      replayPerSec: median(replays.map((replay) => replay.eventsPerSecond)),
      replayEvents,
      rawReadPerSec: median(rawReads.map((read) => read.perSec)),
      single: medianLatency(singleAppends),
      rawSingle: medianLatency(rawSingles),
    };
  } finally {
    await ledger.close();
  }
}
