import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { jobHistory } from './generate-events.ts';
import { round } from './report.ts';
import { percentileFigures, sequentialLatency } from './stats.ts';
import type { PercentileFigures } from './stats.ts';

/** How far the one job grows, and how many reads are timed at each size. */
export interface CostCurveSizes {
  /** Event counts the job is read at, ascending (e.g. 10k, 100k, 1M). */
  events: readonly number[];
  /** Status reads and timeline pages timed at each size. */
  reads: number;
  /** Dashboard job-page loads timed at each size (each is eight requests at once). */
  dashboardReads: number;
}

/**
 * One read's p50 and p99 at each size, and `refP50Ms`: the same read of a job of the
 * smallest size, taken in turn with it, so that drift of a shared machine between sizes
 * shows there too. `ratio` is the p50 at the largest size over the reference's in the same
 * reads; `curveRatio` over the p50 at the smallest size, taken earlier.
 */
export interface ReadCurve {
  p50Ms: number[];
  p99Ms: number[];
  refP50Ms: number[];
  ratio: number;
  curveRatio: number;
}

export interface CostCurveResult {
  events: number[];
  reads: number;
  dashboardReads: number;
  /** Appending up to each size, and the projection runner's catch-up after it. */
  growMs: number[];
  catchUpMs: number[];
  statusRead: ReadCurve;
  timelinePage: ReadCurve;
  /**
   * All requests of a job-page load, sent at once; `firstLoadMs` is the first load after the
   * job grew, `routeP50Ms` each request sent alone.
   */
  dashboardRead: ReadCurve & { firstLoadMs: number[]; routeP50Ms: Record<string, number[]> };
}

const jobId = 'cost-curve-0001';
/** Stays at the smallest size: read in turn with the growing job. */
const refJobId = 'cost-curve-0002';

/**
 * What src/dashboard/job-data.js reads when the job page opens (`readAll`): the six job
 * reads, and the first pages of the timeline and the log as event-list.js asks for them.
 */
function dashboardPaths(id: string) {
  const base = `/v1/jobs/${id}`;
  return {
    status: base,
    throughput: `${base}/throughput`,
    summary: `${base}/summary`,
    failures: `${base}/failures`,
    pending: `${base}/items?status=pending&limit=20`,
    stuck: `${base}/items?status=stuck&leaseMs=300000&limit=20`,
    timeline: `${base}/timeline?order=desc&limit=50`,
    logs: `${base}/logs?order=desc&limit=50`,
  };
}

type Get = (path: string) => Promise<void>;

/**
 * costCurve: one job grown to each of `sizes.events` events, and at each size the time of
 * a status read (`GET /v1/jobs/:id`), a timeline first page (`GET /v1/jobs/:id/timeline`,
 * the default page) and a dashboard job-page load, over HTTP against a server in this
 * process that runs the projections, as `headway serve` does. The jobs never finish:
 * their history is one event longer than the largest size, so every size reads a running job.
 */
export async function costCurve(
  ledger: Ledger,
  sizes: CostCurveSizes,
  signal: AbortSignal,
  log: (message: string) => void = () => undefined,
): Promise<CostCurveResult> {
  const top = Math.max(...sizes.events);
  const history = jobHistory(jobId, top + 1);
  const server = await createServer({ ledger });
  const runners = ledger.runProjections();
  const growMs: number[] = [];
  const catchUpMs: number[] = [];
  const status: Pair[] = [];
  const timeline: Pair[] = [];
  const dashboard: (Pair & { firstMs: number; routes: Record<string, number> })[] = [];
  try {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    const get: Get = async (path) => {
      const response = await fetch(`${url}${path}`, { signal });
      // The body is part of the read's cost.
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
    };
    await appendUpTo(ledger, refJobId, jobHistory(refJobId, top + 1), 0, sizes.events[0]!, signal);
    let version = 0;
    for (const size of sizes.events) {
      signal.throwIfAborted();
      const grown = performance.now();
      version = await appendUpTo(ledger, jobId, history, version, size, signal);
      growMs.push(performance.now() - grown);
      const caughtUp = performance.now();
      await untilCaughtUp(ledger, signal);
      catchUpMs.push(performance.now() - caughtUp);
      // As autovacuum would in time: fresh statistics, and no vacuum during the timed reads.
      await sql`vacuum analyze events`.execute(ledger.db);
      log(`cost curve: ${size.toLocaleString('en-US')} events`);

      status.push(await readsInTurn(sizes.reads, (id) => get(`/v1/jobs/${id}`)));
      timeline.push(await readsInTurn(sizes.reads, (id) => get(`/v1/jobs/${id}/timeline`)));
      dashboard.push(await dashboardLoads(sizes.dashboardReads, get));
    }
  } finally {
    await server.close();
    await runners.stop();
  }
  const routeNames = Object.keys(dashboardPaths(jobId));
  return {
    events: [...sizes.events],
    reads: sizes.reads,
    dashboardReads: sizes.dashboardReads,
    growMs: growMs.map(round.ms),
    catchUpMs: catchUpMs.map(round.ms),
    statusRead: curve(status),
    timelinePage: curve(timeline),
    dashboardRead: {
      ...curve(dashboard),
      firstLoadMs: dashboard.map((load) => round.ms(load.firstMs)),
      routeP50Ms: Object.fromEntries(
        routeNames.map((name) => [name, dashboard.map((load) => round.ms(load.routes[name]!))]),
      ),
    },
  };
}

/** The growing job's figures, and the reference job's from the same rounds. */
interface Pair {
  job: PercentileFigures;
  ref: PercentileFigures;
}

function curve(points: readonly Pair[]): ReadCurve {
  const first = points[0]?.job.p50Ms ?? 0;
  const last = points.at(-1);
  const ratio = (value: number, to: number) => round.ratio(to > 0 ? value / to : 0);
  return {
    p50Ms: points.map((point) => round.ms(point.job.p50Ms)),
    p99Ms: points.map((point) => round.ms(point.job.p99Ms)),
    refP50Ms: points.map((point) => round.ms(point.ref.p50Ms)),
    ratio: ratio(last?.job.p50Ms ?? 0, last?.ref.p50Ms ?? 0),
    curveRatio: ratio(last?.job.p50Ms ?? 0, first),
  };
}

/**
 * `count` reads of the growing job and as many of the reference job, one after another in
 * turn, after a few untimed ones of each.
 */
async function readsInTurn(count: number, read: (id: string) => Promise<void>): Promise<Pair> {
  for (let warm = 0; warm < 3; warm++) {
    await read(jobId);
    await read(refJobId);
  }
  const times = { job: [] as number[], ref: [] as number[] };
  for (let index = 0; index < count; index++) {
    for (const [which, id] of [
      ['job', jobId],
      ['ref', refJobId],
    ] as const) {
      const started = performance.now();
      await read(id);
      times[which].push(performance.now() - started);
    }
  }
  return { job: percentileFigures(times.job), ref: percentileFigures(times.ref) };
}

/**
 * `count` job-page loads of each job in turn: every request of a load at once, timed until
 * the last answers. The first load after the job grew folds the new events into the fold
 * cache and is reported on its own. Then each request of the growing job alone, `count`
 * times, to say which one costs: sent at once they share one event loop, so each one's
 * time is mostly the others'.
 */
async function dashboardLoads(
  count: number,
  get: Get,
): Promise<Pair & { firstMs: number; routes: Record<string, number> }> {
  const load = async (id: string) => {
    await Promise.all(Object.values(dashboardPaths(id)).map(get));
  };
  const first = performance.now();
  await load(jobId);
  const firstMs = performance.now() - first;
  const loads = await readsInTurn(count, load);
  const routes: Record<string, number> = {};
  for (const [name, path] of Object.entries(dashboardPaths(jobId))) {
    routes[name] = (await sequentialLatency(count, () => get(path))).p50Ms;
  }
  return { ...loads, firstMs, routes };
}

/**
 * Appends a history's next events until the job holds `size`, in calls of at most 10,000
 * (the append limit), as seedJob does from the start; returns the new version.
 */
async function appendUpTo(
  ledger: Ledger,
  id: string,
  history: ReturnType<typeof jobHistory>,
  version: number,
  size: number,
  signal: AbortSignal,
): Promise<number> {
  while (version < size) {
    signal.throwIfAborted();
    const chunk = [];
    while (chunk.length < Math.min(10_000, size - version)) {
      const next = history.next();
      if (next.done) throw new Error(`the history of ${id} ended at ${version + chunk.length}`);
      chunk.push(next.value);
    }
    const result = await ledger.append(id, chunk, { expectedVersion: version });
    version = result.nextExpectedVersion;
  }
  return version;
}

/** Waits until every stored projection has folded the whole log. */
async function untilCaughtUp(ledger: Ledger, signal: AbortSignal): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const statuses = await ledger.projectionStatus();
    const active = statuses.filter((status) => status.generation?.status === 'active');
    if (active.length > 0 && active.every((status) => status.lag.events === 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
