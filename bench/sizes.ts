import type { CostCurveSizes } from './cost-curve.ts';

/** How much work each workload does; `--quick` keeps the whole run under two minutes. */
export interface BenchSizes {
  /** batchAppend: jobs, each one `append` call of `eventsPerBatch` events. */
  batchJobs: number;
  eventsPerBatch: number;
  /** singleAppend and the raw single-row insert: calls of one event each. */
  singleCalls: number;
  /** concurrentAppend: producers, and events each appends one at a time. */
  producers: number;
  eventsPerProducer: number;
  /** replay: the log holds replayJobs × eventsPerReplayJob events. */
  replayJobs: number;
  eventsPerReplayJob: number;
  /** fold: jobs of the replay log loaded into memory, and the least time to fold them. */
  foldJobs: number;
  foldMinMs: number;
  /** jobSnapshot: events of the one job, and timed runs (the median is reported). */
  snapshotEvents: number;
  snapshotRuns: number;
  /**
   * PGlite: batchAppend jobs (of `eventsPerBatch`) per round and replay log jobs (of
   * `eventsPerReplayJob`); each workload and its baseline run three rounds.
   */
  pgliteBatchJobs: number;
  pgliteReplayJobs: number;
  /** PGlite singleAppend and its raw single-row insert: calls of one event each, per round. */
  pgliteSingleCalls: number;
  /** liveLatency: how long the producer appends at 2,000 events/s. */
  liveDurationMs: number;
  /** statusQuery: status queries timed while appends run. */
  statusQueries: number;
  /** httpAppend: batches of 100 events each of the 32 clients posts. */
  httpBatchesPerClient: number;
  /** httpStatus at a steady 10,000 events/s over HTTP: how long the clients post. */
  httpSteadyMs: number;
  /** dashboardLatency: appends timed to the screen, on each of the two pages. */
  dashboardAppends: number;
  /** dashboardLoad: seconds each page is watched under load. */
  dashboardLoadSeconds: number;
  /** costCurve: the sizes one job is grown to and read at, and the reads timed at each. */
  costCurve: CostCurveSizes;
}

export const fullSizes: BenchSizes = {
  batchJobs: 100,
  eventsPerBatch: 1_000,
  singleCalls: 5_000,
  producers: 64,
  eventsPerProducer: 500,
  replayJobs: 100,
  eventsPerReplayJob: 10_000,
  foldJobs: 10,
  foldMinMs: 2_000,
  snapshotEvents: 100_000,
  snapshotRuns: 5,
  pgliteBatchJobs: 10,
  pgliteReplayJobs: 10,
  pgliteSingleCalls: 1_000,
  liveDurationMs: 10_000,
  statusQueries: 2_000,
  httpBatchesPerClient: 30,
  httpSteadyMs: 10_000,
  dashboardAppends: 100,
  dashboardLoadSeconds: 10,
  costCurve: { events: [10_000, 100_000, 1_000_000], reads: 100, dashboardReads: 20 },
};

export const quickSizes: BenchSizes = {
  batchJobs: 20,
  eventsPerBatch: 1_000,
  singleCalls: 1_000,
  producers: 64,
  eventsPerProducer: 100,
  replayJobs: 20,
  eventsPerReplayJob: 10_000,
  foldJobs: 10,
  foldMinMs: 2_000,
  snapshotEvents: 100_000,
  snapshotRuns: 3,
  pgliteBatchJobs: 5,
  pgliteReplayJobs: 2,
  pgliteSingleCalls: 300,
  liveDurationMs: 3_000,
  statusQueries: 500,
  httpBatchesPerClient: 10,
  httpSteadyMs: 4_000,
  dashboardAppends: 30,
  dashboardLoadSeconds: 4,
  costCurve: { events: [10_000, 100_000], reads: 50, dashboardReads: 10 },
};
