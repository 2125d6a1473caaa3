import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openLedger } from '../src/open-ledger.ts';
import { batchAppend, concurrentAppend, jobBatches, singleAppend } from './append-workloads.ts';
import type { JobBatch } from './append-workloads.ts';
import {
  createRawTable,
  insertRawRows,
  rawBatchInsert,
  rawKeysetRead,
  rawSingleInsert,
} from './baselines.ts';
import { jobIds, toRawRows } from './generate-events.ts';
import { pgliteWorkloads } from './pglite-workloads.ts';
import { foldInMemory, jobSnapshot, loadJobs, seedJob } from './read-workloads.ts';
import { httpAppendAndStatus } from './http-workloads.ts';
import type { HttpStatusFigures } from './http-workloads.ts';
import { dashboardWorkloads } from './dashboard-workloads.ts';
import { costCurve } from './cost-curve.ts';
import type { PageUnderLoad } from './dashboard-workloads.ts';
import { liveLatency, rebuildAll, statusUnderLoad } from './live-workloads.ts';
import { replayHeapCapMb, replayInChild } from './replay.ts';
import { round } from './report.ts';
import type { BenchResult, TableExtras, WhatBoundsStatus } from './report.ts';
import type { BenchSizes } from './sizes.ts';

/** Where the suite runs and how it reports progress. */
export interface SuiteContext {
  databaseUrl: string;
  serverVersion: string;
  sizes: BenchSizes;
  quick: boolean;
  signal: AbortSignal;
  log: (message: string) => void;
}

/** cpu model, cores and memory, so a figure can be read against its machine. */
export function describeMachine(): string {
  const cores = cpus();
  const gb = Math.round(totalmem() / 2 ** 30);
  return `${cores[0]?.model.trim() ?? 'unknown cpu'}, ${cores.length} cores, ${gb} GB RAM`;
}

/** A page's figures under load, rounded for the report. */
function roundPage(page: PageUnderLoad): PageUnderLoad {
  return {
    framesPerSec: round.ratio(page.framesPerSec),
    frameP95Ms: round.ms(page.frameP95Ms),
    inputDelayP95Ms: round.ms(page.inputDelayP95Ms),
    inputDelayMaxMs: round.ms(page.inputDelayMaxMs),
    longTaskMsPerSec: round.ms(page.longTaskMsPerSec),
    updatesPerSec: round.ratio(page.updatesPerSec),
    readsPerSec: round.ratio(page.readsPerSec),
    readP50Ms: round.ms(page.readP50Ms),
  };
}

function rawRowsOf(jobs: readonly JobBatch[]) {
  return jobs.flatMap((job) => toRawRows(job.jobId, job.events));
}

/**
 * Every workload in order, each raw baseline right before the workload it measures so
 * drift on a shared machine hits both alike. The replay log is seeded first, into empty
 * tables, so it holds exactly the replayed events; later appends land in a full log.
 */
export async function runSuite(context: SuiteContext): Promise<{
  result: BenchResult;
  extras: TableExtras;
}> {
  const { databaseUrl, sizes, signal, log } = context;
  const step = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    signal.throwIfAborted();
    const started = performance.now();
    const value = await work();
    log(`${label}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return value;
  };

  const raw = new pg.Client({ connectionString: databaseUrl });
  // An interrupted run drops the database under this connection; that is no crash.
  raw.on('error', () => undefined);
  await raw.connect();
  const ledger = await openLedger({ databaseUrl });
  const oneConnection = await openLedger({ databaseUrl, poolSize: 1, migrate: false });
  // Folds every read from the first event, as a job read for the first time is.
  const cold = await openLedger({ databaseUrl, migrate: false, foldCacheJobs: 0 });
  try {
    await createRawTable(raw);

    const replayJobs = jobIds('replay', sizes.replayJobs);
    const replayEvents = sizes.replayJobs * sizes.eventsPerReplayJob;
    await step(`seed ${replayEvents.toLocaleString('en-US')} events (ledger and raw)`, async () => {
      for (const jobId of replayJobs) {
        await seedJob(ledger, jobId, sizes.eventsPerReplayJob, (events, firstVersion) =>
          insertRawRows(raw, toRawRows(jobId, events, firstVersion), 10_000),
        );
      }
      // Readers of a freshly bulk-loaded table would otherwise pay for setting hint bits.
      await raw.query('vacuum analyze events');
      await raw.query('vacuum analyze raw_events');
      await raw.query('checkpoint');
    });

    const rawRead = await step('raw keyset read', async () => {
      await rawKeysetRead(raw, 20_000);
      return rawKeysetRead(raw);
    });
    const replay = await step('replay (child process)', () => replayInChild(databaseUrl, signal));
    if (replay.events !== replayEvents || replay.jobs !== sizes.replayJobs) {
      throw new Error(
        `replay saw ${replay.events} events of ${replay.jobs} jobs, expected ${replayEvents} of ${sizes.replayJobs}`,
      );
    }

    // While the log holds exactly the replay events.
    const rebuild = await step('rebuild', () => rebuildAll(ledger));

    const { foldPerSec, foldEvents } = await step('fold', async () => {
      const events = await loadJobs(ledger, replayJobs.slice(0, sizes.foldJobs));
      return { foldPerSec: foldInMemory(events, sizes.foldMinMs), foldEvents: events.length };
    });

    const { rawBatchPerSec, batchPerSec } = await step('batch appends', async () => {
      const jobs = jobBatches('batch', sizes.batchJobs, sizes.eventsPerBatch);
      await rawBatchInsert(raw, rawRowsOf(jobBatches('warm-raw', 2, sizes.eventsPerBatch)));
      const rawBatchPerSec = await rawBatchInsert(raw, rawRowsOf(jobs));
      await batchAppend(ledger, jobBatches('warm-batch', 2, sizes.eventsPerBatch));
      return { rawBatchPerSec, batchPerSec: await batchAppend(ledger, jobs) };
    });

    const { rawSingle, single } = await step('single appends', async () => {
      const [job] = jobBatches('single', 1, sizes.singleCalls);
      await rawSingleInsert(raw, rawRowsOf(jobBatches('warm-raw-single', 1, 200)));
      const rawSingle = await rawSingleInsert(raw, rawRowsOf([job!]));
      await singleAppend(oneConnection, jobBatches('warm-single', 1, 200)[0]!);
      return { rawSingle, single: await singleAppend(oneConnection, job!) };
    });

    const concurrentPerSec = await step('concurrent appends', async () => {
      await concurrentAppend(ledger, jobBatches('warm-concurrent', sizes.producers, 5));
      return concurrentAppend(
        ledger,
        jobBatches('concurrent', sizes.producers, sizes.eventsPerProducer),
      );
    });

    const snapshotMs = await step('job snapshot', async () => {
      await seedJob(ledger, 'snapshot-0001', sizes.snapshotEvents);
      // Fresh statistics: until autovacuum analyses the new rows the planner may sort the
      // whole stream for every page. Vacuuming now also keeps autovacuum from running
      // during the timed reads, so the figure times the ledger, not autovacuum.
      await raw.query('vacuum analyze events');
      return jobSnapshot(cold, 'snapshot-0001', sizes.snapshotRuns);
    });

    const live = await step('live latency', () =>
      liveLatency(oneConnection, ledger, {
        eventsPerSec: 2_000,
        subscribers: 10,
        durationMs: sizes.liveDurationMs,
      }),
    );

    const status = await step('status queries during appends', () =>
      statusUnderLoad(ledger, oneConnection, raw, {
        queries: sizes.statusQueries,
        eventsPerSec: 2_000,
      }),
    );

    const http = await step('http appends and status, saturated', () =>
      httpAppendAndStatus(
        databaseUrl,
        { kind: 'saturated', clients: 32, batches: sizes.httpBatchesPerClient },
        signal,
      ),
    );

    // 10 clients, each one batch of 100 every 100 ms: 10,000 events/s, below saturation.
    const httpSteady = await step('http status at a steady 10,000 events/s', () =>
      httpAppendAndStatus(
        databaseUrl,
        { kind: 'steady', clients: 10, intervalMs: 100, durationMs: sizes.httpSteadyMs },
        signal,
      ),
    );

    const dashboard = await step('dashboard in Chromium', () =>
      dashboardWorkloads(ledger, {
        samples: sizes.dashboardAppends,
        loadSeconds: sizes.dashboardLoadSeconds,
        log,
      }),
    );

    // Last on PostgreSQL: it adds up to a million events that no later workload should read.
    const curve = await step('cost curve', () => costCurve(ledger, sizes.costCurve, signal, log));

    const pglite = await step('pglite', () => pgliteWorkloads(sizes));

    const result: BenchResult = {
      machine: describeMachine(),
      postgres: context.serverVersion,
      batchAppend: {
        eventsPerSec: round.rate(batchPerSec),
        baselinePerSec: round.rate(rawBatchPerSec),
        ratio: round.ratio(batchPerSec / rawBatchPerSec),
      },
      singleAppend: {
        eventsPerSec: round.rate(single.perSec),
        p50Ms: round.ms(single.p50Ms),
        p99Ms: round.ms(single.p99Ms),
        baselinePerSec: round.rate(rawSingle.perSec),
        ratio: round.ratio(single.perSec / rawSingle.perSec),
      },
      concurrentAppend: {
        eventsPerSec: round.rate(concurrentPerSec),
        producers: sizes.producers,
        vsSingle: round.ratio(concurrentPerSec / single.perSec),
      },
      replay: {
        eventsPerSec: round.rate(replay.eventsPerSec),
        baselinePerSec: round.rate(rawRead.perSec),
        ratio: round.ratio(replay.eventsPerSec / rawRead.perSec),
        peakRssMb: Math.round(replay.peakRssMb),
        heapCapMb: replayHeapCapMb,
        events: replay.events,
      },
      fold: { eventsPerSec: round.rate(foldPerSec) },
      jobSnapshot: { events: sizes.snapshotEvents, ms: round.ms(snapshotMs) },
      pglite: {
        batchAppendPerSec: round.rate(pglite.batchAppendPerSec),
        batchAppendBaselinePerSec: round.rate(pglite.rawBatchPerSec),
        batchAppendRatio: round.ratio(pglite.batchAppendPerSec / pglite.rawBatchPerSec),
        singleAppendPerSec: round.rate(pglite.single.perSec),
        singleAppendP50Ms: round.ms(pglite.single.p50Ms),
        singleAppendP99Ms: round.ms(pglite.single.p99Ms),
        singleAppendBaselinePerSec: round.rate(pglite.rawSingle.perSec),
        singleAppendBaselineP50Ms: round.ms(pglite.rawSingle.p50Ms),
        singleAppendBaselineP99Ms: round.ms(pglite.rawSingle.p99Ms),
        singleAppendRatio: round.ratio(pglite.single.perSec / pglite.rawSingle.perSec),
        replayPerSec: round.rate(pglite.replayPerSec),
        replayBaselinePerSec: round.rate(pglite.rawReadPerSec),
        replayRatio: round.ratio(pglite.replayPerSec / pglite.rawReadPerSec),
        replayEvents: pglite.replayEvents,
      },
      liveLatency: {
        p50Ms: round.ms(live.p50Ms),
        p99Ms: round.ms(live.p99Ms),
        eventsPerSec: 2_000,
        subscribers: 10,
      },
      rebuild: {
        eventsPerSec: round.rate(rebuild.eventsPerSec),
        events: rebuild.events,
        baselinePerSec: round.rate(rawRead.perSec),
        ratio: round.ratio(rebuild.eventsPerSec / rawRead.perSec),
      },
      httpAppend: {
        eventsPerSec: round.rate(http.appendPerSec),
        clients: 32,
        batchSize: 100,
        vsBatchAppend: round.ratio(http.appendPerSec / batchPerSec),
      },
      httpStatus: {
        p50Ms: round.ms(httpSteady.statusP50Ms),
        p99Ms: round.ms(httpSteady.statusP99Ms),
        queries: httpSteady.statusQueries,
        clients: 10,
        targetPerSec: 10_000,
        eventsPerSec: round.rate(httpSteady.appendPerSec),
        sendLagP99Ms: round.ms(httpSteady.sendLagP99Ms ?? 0),
        ...whatBoundsStatus(httpSteady),
      },
      httpStatusSaturated: {
        p50Ms: round.ms(http.statusP50Ms),
        p99Ms: round.ms(http.statusP99Ms),
        queries: http.statusQueries,
        ...whatBoundsStatus(http),
      },
      dashboardLatency: {
        p50Ms: round.ms(dashboard.overviewLatency.p50Ms),
        p95Ms: round.ms(dashboard.overviewLatency.p95Ms),
        sseP95Ms: round.ms(dashboard.overviewLatency.sseP95Ms),
        jobPageP50Ms: round.ms(dashboard.jobPageLatency.p50Ms),
        jobPageP95Ms: round.ms(dashboard.jobPageLatency.p95Ms),
        appends: dashboard.overviewLatency.samples,
      },
      dashboardLoad: {
        jobs: dashboard.load.jobs,
        eventsPerSec: dashboard.load.eventsPerSec,
        overview: roundPage(dashboard.load.overview),
        searchP95Ms: round.ms(dashboard.load.search.p95Ms),
        jobPage: roundPage(dashboard.load.jobPage),
      },
      costCurve: curve,
      statusQuery: {
        p50Ms: round.ms(status.p50Ms),
        p99Ms: round.ms(status.p99Ms),
        queries: status.samples,
        appendsPerSec: 2_000,
        jobEvents: status.jobEvents,
        baselineP50Ms: round.ms(status.baseline.p50Ms),
        baselineP99Ms: round.ms(status.baseline.p99Ms),
      },
    };
    const extras: TableExtras = {
      quick: context.quick,
      rawSingleP50Ms: round.ms(rawSingle.p50Ms),
      rawSingleP99Ms: round.ms(rawSingle.p99Ms),
      foldEvents,
      replayStartRssMb: Math.round(replay.startRssMb),
    };
    return { result, extras };
  } finally {
    await oneConnection.close();
    await cold.close();
    await ledger.close();
    await raw.end();
  }
}

function whatBoundsStatus(figures: HttpStatusFigures): WhatBoundsStatus {
  return {
    loopDelayP99Ms: round.ms(figures.serverLoopDelayP99Ms),
    roundTripP50Ms: round.ms(figures.roundTripP50Ms),
    roundTripP99Ms: round.ms(figures.roundTripP99Ms),
    machineBusyPercent: figures.machineBusy === null ? null : Math.round(figures.machineBusy * 100),
  };
}
