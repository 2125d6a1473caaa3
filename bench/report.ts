import type { FaultBenchResult } from './fault-suite.ts';
import type { PageUnderLoad } from './dashboard-workloads.ts';

/** The last line of the output, in the shape issue 3 fixes for scripts to read. */
export interface BenchResult {
  machine: string;
  postgres: string;
  batchAppend: { eventsPerSec: number; baselinePerSec: number; ratio: number };
  singleAppend: {
    eventsPerSec: number;
    p50Ms: number;
    p99Ms: number;
    baselinePerSec: number;
    ratio: number;
  };
  concurrentAppend: { eventsPerSec: number; producers: number; vsSingle: number };
  replay: {
    eventsPerSec: number;
    baselinePerSec: number;
    ratio: number;
    peakRssMb: number;
    /** The replay process's V8 heap cap (`--max-old-space-size`). */
    heapCapMb: number;
    events: number;
  };
  fold: { eventsPerSec: number };
  jobSnapshot: { events: number; ms: number };
  pglite: { batchAppendPerSec: number; replayPerSec: number };
  liveLatency: { p50Ms: number; p99Ms: number; eventsPerSec: number; subscribers: number };
  rebuild: { eventsPerSec: number; events: number; baselinePerSec: number; ratio: number };
  httpAppend: { eventsPerSec: number; clients: number; batchSize: number; vsBatchAppend: number };
  httpStatus: { p50Ms: number; p99Ms: number; queries: number };
  /** Append call to the change in the page, p95 over `appends` (the target is on p95). */
  dashboardLatency: {
    p50Ms: number;
    p95Ms: number;
    /** The same appends read by a plain SSE client: the server's part of the latency. */
    sseP95Ms: number;
    jobPageP50Ms: number;
    jobPageP95Ms: number;
    appends: number;
  };
  /** The overview's first page and the busy job's page, while one of `jobs` takes `eventsPerSec`. */
  dashboardLoad: {
    jobs: number;
    eventsPerSec: number;
    overview: PageUnderLoad;
    searchP95Ms: number;
    jobPage: PageUnderLoad;
  };
  statusQuery: {
    p50Ms: number;
    p99Ms: number;
    queries: number;
    appendsPerSec: number;
    jobEvents: number;
    baselineP50Ms: number;
    baselineP99Ms: number;
  };
}

/** Figures the table shows beside the result. */
export interface TableExtras {
  quick: boolean;
  rawSingleP50Ms: number;
  rawSingleP99Ms: number;
  foldEvents: number;
  replayStartRssMb: number;
}

/** Rounds a rate to whole units, a ratio to two decimals, a time to two. */
export const round = {
  rate: (value: number) => Math.round(value),
  ratio: (value: number) => Math.round(value * 100) / 100,
  ms: (value: number) => Math.round(value * 100) / 100,
};

const number = (value: number) => value.toLocaleString('en-US');
const rate = (value: number, unit: string) => `${number(value)} ${unit}/s`;

/** "60 fps, input delay p95 2 ms, long tasks 0 ms/s, 10 updates/s (12 reads/s, p50 3 ms)" */
const pageFigures = (page: PageUnderLoad) =>
  `${page.framesPerSec} fps, input delay p95 ${page.inputDelayP95Ms} ms, long tasks ${page.longTaskMsPerSec} ms/s, ${page.updatesPerSec} updates/s (${page.readsPerSec} reads/s, p50 ${page.readP50Ms} ms)`;

/** A check mark when `met`, for a glance down the table. */
const mark = (met: boolean) => (met ? 'yes' : 'NO');

/** The readable table: workload, our figure, the raw baseline, the ratio, the target. */
export function formatTable(result: BenchResult, extras: TableExtras): string {
  const { batchAppend, singleAppend, concurrentAppend, replay, fold, jobSnapshot, pglite } = result;
  const { liveLatency, rebuild, statusQuery, httpAppend, httpStatus } = result;
  const { dashboardLatency, dashboardLoad } = result;
  const rows: string[][] = [
    ['workload', 'figure', 'baseline (raw SQL, same run)', 'ratio', 'target', 'met'],
    [
      'batchAppend',
      rate(batchAppend.eventsPerSec, 'events'),
      `unnest x1000: ${rate(batchAppend.baselinePerSec, 'rows')}`,
      String(batchAppend.ratio),
      '>= 0.8',
      mark(batchAppend.ratio >= 0.8),
    ],
    [
      'singleAppend',
      `${rate(singleAppend.eventsPerSec, 'events')}, p50 ${singleAppend.p50Ms} ms, p99 ${singleAppend.p99Ms} ms`,
      `insert: ${rate(singleAppend.baselinePerSec, 'rows')}, p50 ${extras.rawSingleP50Ms} ms, p99 ${extras.rawSingleP99Ms} ms`,
      String(singleAppend.ratio),
      '>= 0.8',
      mark(singleAppend.ratio >= 0.8),
    ],
    [
      'concurrentAppend',
      `${rate(concurrentAppend.eventsPerSec, 'events')}, ${concurrentAppend.producers} producers`,
      `singleAppend: ${rate(singleAppend.eventsPerSec, 'events')}`,
      String(concurrentAppend.vsSingle),
      '>= 8',
      mark(concurrentAppend.vsSingle >= 8),
    ],
    [
      'replay',
      `${rate(replay.eventsPerSec, 'events')}, ${number(replay.events)} events, peak RSS ${replay.peakRssMb} MB (${extras.replayStartRssMb} MB before; heap cap ${replay.heapCapMb} MB)`,
      `keyset x10000: ${rate(replay.baselinePerSec, 'rows')}`,
      String(replay.ratio),
      '>= 0.7, RSS <= 300 MB',
      mark(replay.ratio >= 0.7 && replay.peakRssMb <= 300),
    ],
    [
      'fold',
      `${rate(fold.eventsPerSec, 'events')} (${number(extras.foldEvents)} events)`,
      '',
      '',
      '>= 5,000,000/s',
      mark(fold.eventsPerSec >= 5_000_000),
    ],
    [
      'jobSnapshot',
      `${jobSnapshot.ms} ms for ${number(jobSnapshot.events)} events`,
      '',
      '',
      '<= 500 ms',
      mark(jobSnapshot.ms <= 500),
    ],
    [
      'liveLatency',
      `p50 ${liveLatency.p50Ms} ms, p99 ${liveLatency.p99Ms} ms at ${number(liveLatency.eventsPerSec)} events/s, ${liveLatency.subscribers} subscribers`,
      '',
      '',
      'p99 <= 25 ms',
      mark(liveLatency.p99Ms <= 25),
    ],
    [
      'rebuild',
      `${rate(rebuild.eventsPerSec, 'events')}, ${number(rebuild.events)} events`,
      `keyset x10000: ${rate(rebuild.baselinePerSec, 'rows')}`,
      String(rebuild.ratio),
      '>= 0.5',
      mark(rebuild.ratio >= 0.5),
    ],
    [
      'statusQuery',
      `p50 ${statusQuery.p50Ms} ms, p99 ${statusQuery.p99Ms} ms, ${number(statusQuery.queries)} queries of a ${number(statusQuery.jobEvents)}-event job during ${number(statusQuery.appendsPerSec)} appended events/s`,
      `key read: p50 ${statusQuery.baselineP50Ms} ms, p99 ${statusQuery.baselineP99Ms} ms`,
      '',
      'p99 <= 5 ms',
      mark(statusQuery.p99Ms <= 5),
    ],
    [
      'httpAppend',
      `${rate(httpAppend.eventsPerSec, 'events')}, ${httpAppend.clients} clients posting batches of ${httpAppend.batchSize}`,
      `batchAppend: ${rate(result.batchAppend.eventsPerSec, 'events')}`,
      String(httpAppend.vsBatchAppend),
      '>= 0.5',
      mark(httpAppend.vsBatchAppend >= 0.5),
    ],
    [
      'httpStatus',
      `p50 ${httpStatus.p50Ms} ms, p99 ${httpStatus.p99Ms} ms over ${number(httpStatus.queries)} GET /v1/jobs/:id during httpAppend`,
      '',
      '',
      'p99 <= 10 ms',
      mark(httpStatus.p99Ms <= 10),
    ],
    [
      'dashboardLatency',
      `p50 ${dashboardLatency.p50Ms} ms, p95 ${dashboardLatency.p95Ms} ms on the overview; job page p50 ${dashboardLatency.jobPageP50Ms} ms, p95 ${dashboardLatency.jobPageP95Ms} ms (${number(dashboardLatency.appends)} appends each)`,
      `SSE reader: p95 ${dashboardLatency.sseP95Ms} ms`,
      '',
      'p95 <= 250 ms',
      mark(Math.max(dashboardLatency.p95Ms, dashboardLatency.jobPageP95Ms) <= 250),
    ],
    [
      'dashboardLoad',
      `${number(dashboardLoad.jobs)} jobs, one at ${number(dashboardLoad.eventsPerSec)} events/s: overview ${pageFigures(dashboardLoad.overview)}; search p95 ${dashboardLoad.searchP95Ms} ms; job page ${pageFigures(dashboardLoad.jobPage)}`,
      '',
      '',
      '>= 30 fps, input delay p95 <= 50 ms',
      mark(
        [dashboardLoad.overview, dashboardLoad.jobPage].every(
          (page) => page.framesPerSec >= 30 && page.inputDelayP95Ms <= 50,
        ),
      ),
    ],
    ['pglite batchAppend', rate(pglite.batchAppendPerSec, 'events'), '', '', '', ''],
    ['pglite replay', rate(pglite.replayPerSec, 'events'), '', '', '', ''],
  ];
  return [
    `Headway benchmark${extras.quick ? ' (--quick: smaller counts; targets are for the full run)' : ''}`,
    `${result.machine}; PostgreSQL ${result.postgres}`,
    '',
    ...alignRows(rows),
  ].join('\n');
}

/** Rows as aligned text columns, a rule under the first. */
function alignRows(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)];
}

/** The table of `npm run bench -- --faults`. */
export function formatFaultTable(result: FaultBenchResult): string {
  const { soak, idleStreams } = result;
  const outcomes = Object.entries(soak.outcomes)
    .map(([status, count]) => `${status}: ${number(count)}`)
    .join(', ');
  const rows = [
    ['figure', 'value', 'target', 'met'],
    ['soak', `${soak.elapsedS} s, ${number(soak.requests)} requests (${outcomes})`, '', ''],
    ['server exits', soak.serverAlive ? 'none' : 'exited', 'none', mark(soak.serverAlive)],
    [
      'answers other than 2xx, 409, 503',
      soak.unexpected.length === 0 ? 'none' : JSON.stringify(soak.unexpected),
      'none',
      mark(soak.unexpected.length === 0),
    ],
    [
      'acknowledged / stored',
      `${number(soak.acknowledged)} / ${number(soak.stored)}; ${soak.missing} missing, ${soak.duplicates} duplicated, ${soak.gaps} gaps`,
      'all stored once',
      mark(soak.missing === 0 && soak.duplicates === 0 && soak.gaps === 0),
    ],
    [
      'recovery after a fault ends',
      `median ${number(soak.recoveryMs.median)} ms, max ${number(soak.recoveryMs.max)} ms over ${Object.keys(soak.recoveryMs.byFault).length} faults; ${soak.backendsTerminated} backends terminated`,
      '<= 20,000 ms',
      mark(soak.recoveryMs.max <= 20_000),
    ],
    [
      `${number(idleStreams.streams)} idle SSE streams: /health p50`,
      `${idleStreams.without.health.p50Ms.toFixed(2)} -> ${idleStreams.with.health.p50Ms.toFixed(2)} ms (x${idleStreams.healthRatio.toFixed(2)})`,
      '< x2',
      mark(idleStreams.healthRatio < 2),
    ],
    [
      `${number(idleStreams.streams)} idle SSE streams: append p50`,
      `${idleStreams.without.append.p50Ms.toFixed(2)} -> ${idleStreams.with.append.p50Ms.toFixed(2)} ms (x${idleStreams.appendRatio.toFixed(2)})`,
      '< x2',
      mark(idleStreams.appendRatio < 2),
    ],
  ];
  return ['Headway fault soak', result.date, '', ...alignRows(rows)].join('\n');
}
