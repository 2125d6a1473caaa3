import type { FaultBenchResult } from './fault-suite.ts';
import type { PageUnderLoad } from './dashboard-workloads.ts';
import type { CostCurveResult, ReadCurve } from './cost-curve.ts';

/** The last line of the output, in the shape issue 3 fixes for scripts to read. */
/** Beside an HTTP status figure: the parts of its wait that are not the read itself. */
export interface WhatBoundsStatus {
  /** The server's event-loop delay p99: waits behind other work in the server. */
  loopDelayP99Ms: number;
  /** `select 1` from a thread of its own meanwhile: the database's round trip on the machine. */
  roundTripP50Ms: number;
  roundTripP99Ms: number;
  /** Percent of all the machine's cores busy meanwhile; null where unknown. */
  machineBusyPercent: number | null;
}

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
  /** The embedded store in memory; each baseline is the same raw SQL on the same PGlite. */
  pglite: {
    batchAppendPerSec: number;
    batchAppendBaselinePerSec: number;
    batchAppendRatio: number;
    singleAppendPerSec: number;
    singleAppendP50Ms: number;
    singleAppendP99Ms: number;
    singleAppendBaselinePerSec: number;
    singleAppendBaselineP50Ms: number;
    singleAppendBaselineP99Ms: number;
    singleAppendRatio: number;
    replayPerSec: number;
    replayBaselinePerSec: number;
    replayRatio: number;
    replayEvents: number;
  };
  liveLatency: { p50Ms: number; p99Ms: number; eventsPerSec: number; subscribers: number };
  rebuild: { eventsPerSec: number; events: number; baselinePerSec: number; ratio: number };
  httpAppend: { eventsPerSec: number; clients: number; batchSize: number; vsBatchAppend: number };
  /** `GET /v1/jobs/:id` while `clients` post batches of 100 at a steady `targetPerSec` in all. */
  httpStatus: WhatBoundsStatus & {
    p50Ms: number;
    p99Ms: number;
    queries: number;
    clients: number;
    targetPerSec: number;
    /** The append rate achieved, and how late batches left behind their schedule (p99). */
    eventsPerSec: number;
    sendLagP99Ms: number;
  };
  /**
   * `GET /v1/jobs/:id` during httpAppend, with the server saturated; beside it, the server's
   * event-loop delay p99, the part of the wait spent behind other work in the server.
   */
  httpStatusSaturated: WhatBoundsStatus & { p50Ms: number; p99Ms: number; queries: number };
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
  /** One job read at 10k, 100k and 1M events (bench/cost-curve.ts). */
  costCurve: CostCurveResult;
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
  const { liveLatency, rebuild, statusQuery, httpAppend, httpStatus, httpStatusSaturated } = result;
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
      '>= 0.8, RSS <= 300 MB',
      mark(replay.ratio >= 0.8 && replay.peakRssMb <= 300),
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
      '>= 0.6',
      mark(rebuild.ratio >= 0.6),
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
      '>= 0.7',
      mark(httpAppend.vsBatchAppend >= 0.7),
    ],
    [
      'httpStatus',
      `p50 ${httpStatus.p50Ms} ms, p99 ${httpStatus.p99Ms} ms over ${number(httpStatus.queries)} GET /v1/jobs/:id while ${httpStatus.clients} clients post ${rate(httpStatus.targetPerSec, 'events')} (achieved ${rate(httpStatus.eventsPerSec, 'events')}, send lag p99 ${httpStatus.sendLagP99Ms} ms); ${statusBounds(httpStatus)}`,
      '',
      '',
      'p99 <= 10 ms',
      mark(httpStatus.p99Ms <= 10),
    ],
    [
      'httpStatus saturated',
      `p50 ${httpStatusSaturated.p50Ms} ms, p99 ${httpStatusSaturated.p99Ms} ms over ${number(httpStatusSaturated.queries)} GET /v1/jobs/:id during httpAppend; ${statusBounds(httpStatusSaturated)}`,
      '',
      '',
      '',
      '',
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
    ...costCurveRows(result.costCurve),
    [
      'pglite batchAppend',
      rate(pglite.batchAppendPerSec, 'events'),
      `unnest x1000: ${rate(pglite.batchAppendBaselinePerSec, 'rows')}`,
      String(pglite.batchAppendRatio),
      '',
      '',
    ],
    [
      'pglite singleAppend',
      `${rate(pglite.singleAppendPerSec, 'events')}, p50 ${pglite.singleAppendP50Ms} ms, p99 ${pglite.singleAppendP99Ms} ms`,
      `insert: ${rate(pglite.singleAppendBaselinePerSec, 'rows')}, p50 ${pglite.singleAppendBaselineP50Ms} ms, p99 ${pglite.singleAppendBaselineP99Ms} ms`,
      String(pglite.singleAppendRatio),
      '',
      '',
    ],
    [
      'pglite replay',
      `${rate(pglite.replayPerSec, 'events')}, ${number(pglite.replayEvents)} events`,
      `keyset x10000: ${rate(pglite.replayBaselinePerSec, 'rows')}`,
      String(pglite.replayRatio),
      '',
      '',
    ],
  ];
  return [
    `Headway benchmark${extras.quick ? ' (--quick: smaller counts; targets are for the full run)' : ''}`,
    `${result.machine}; PostgreSQL ${result.postgres}`,
    '',
    ...alignRows(rows),
  ].join('\n');
}

/** "10k", "100k", "1M": the sizes of the cost curve as the table names them. */
const shortCount = (value: number) =>
  value >= 1_000_000
    ? `${value / 1_000_000}M`
    : value >= 1_000
      ? `${value / 1_000}k`
      : String(value);

/**
 * A row per read of the cost curve: "statusRead 10k -> 1M", p50 and p99 at each size, the
 * ratio of the p50 at the largest size to a job of the smallest, and whether it is within 2x.
 */
function costCurveRows(costCurve: CostCurveResult): string[][] {
  const sizes = costCurve.events.map(shortCount);
  const span = `${sizes[0]} -> ${sizes.at(-1)}`;
  // The ratio is against the reference job read in turn at the largest size: the drift of a
  // shared machine between sizes would otherwise pass for growth (or hide it).
  const row = (name: string, curve: ReadCurve, note: string) => [
    `${name} ${span}`,
    `p50 ${curve.p50Ms.join(' / ')} ms, p99 ${curve.p99Ms.join(' / ')} ms at ${sizes.join(' / ')} events (x${curve.curveRatio} over the first)${note}`,
    `a ${sizes[0]}-event job in turn: p50 ${curve.refP50Ms.join(' / ')} ms`,
    String(curve.ratio),
    '<= 2x',
    mark(curve.ratio <= 2),
  ];
  const { dashboardRead } = costCurve;
  const routes = Object.entries(dashboardRead.routeP50Ms)
    .map(([route, p50Ms]) => `${route} ${p50Ms.join(' / ')}`)
    .join(', ');
  return [
    row('statusRead', costCurve.statusRead, ''),
    row('timelinePage', costCurve.timelinePage, ''),
    row(
      'dashboardRead',
      dashboardRead,
      `; first load after growing ${dashboardRead.firstLoadMs.join(' / ')} ms; each request alone, p50 ms: ${routes}`,
    ),
  ];
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

/** What bounds an HTTP status figure, in a line. */
function statusBounds(bounds: WhatBoundsStatus): string {
  const busy =
    bounds.machineBusyPercent === null ? '' : `, machine ${bounds.machineBusyPercent}% busy`;
  return `server event-loop delay p99 ${bounds.loopDelayP99Ms} ms, select 1 p50 ${bounds.roundTripP50Ms} ms, p99 ${bounds.roundTripP99Ms} ms${busy}`;
}
