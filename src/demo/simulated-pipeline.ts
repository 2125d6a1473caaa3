import { setTimeout as sleep } from 'node:timers/promises';
import type { EventInput, FailureError, JsonValue } from '../../schema/events.ts';
import { combineProjections } from '../../projections/combine.ts';
import { estimateEta, jobEta } from '../../projections/job-eta.ts';
import { allItems, itemRecord, jobItems } from '../../projections/job-items.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import { classifyFailure } from '../../projections/failure-classification.ts';
import type { Ledger } from '../ledger.ts';
import { seededRandom } from './seeded-random.ts';

/** Options of the simulated pipeline. */
export interface DemoOptions {
  /** Items to process (default 2,000). */
  items?: number;
  /** Share of attempts that fail (default 0.04). */
  failRate?: number;
  /** Seed of the simulation; a seed repeats a run exactly. */
  seed?: number;
  /** Crash halfway and resume from the last checkpoint (default true). */
  crash?: boolean;
  /** Items worked on at once (default 8). */
  workers?: number;
  /** Real milliseconds to wait per batch, so a person can watch (default 0). */
  paceMs?: number;
  /**
   * Record each event when its simulated time comes, so the job runs on the wall clock as a
   * real one would and watchers see true rates and ETAs (default false: as fast as it can).
   * Leases are shortened so the crash costs seconds, not half a minute.
   */
  realTime?: boolean;
  /** Where progress lines go. */
  print?: (line: string) => void;
  /** The job's id (default: a new one), so a caller can point at it before the run ends. */
  jobId?: string;
}

/** A sample of the ETA as the run went. */
export interface EtaSample {
  percent: number;
  processed: number;
  rate: number | null;
  etaMs: number | null;
  lowMs: number | null;
  highMs: number | null;
}

/** What a demo run did. */
export interface DemoRun {
  jobId: string;
  /** Items finished when the simulated crash happened, or null without a crash. */
  crashedAfter: number | null;
  /** The checkpoint cursor the resumed run started from. */
  resumedFrom: JsonValue | null;
  /** Items found in flight after the crash and released. */
  released: string[];
  etaHistory: EtaSample[];
}

const stages = [
  { name: 'discover', weight: 1 },
  { name: 'process', weight: 8 },
  { name: 'publish', weight: 1 },
];

/** Failures the simulation draws from, across the default categories. */
const failureKinds: { weight: number; make: (itemId: string) => Error }[] = [
  {
    weight: 5,
    make: (id) =>
      withCode(new Error(`read ECONNRESET while fetching https://example.org/${id}`), 'ECONNRESET'),
  },
  {
    weight: 3,
    make: (id) => withCode(new Error(`connect ETIMEDOUT 10.2.0.7:443 (${id})`), 'ETIMEDOUT'),
  },
  {
    weight: 3,
    make: () => Object.assign(new Error('HTTP 503 Service Unavailable'), { status: 503 }),
  },
  {
    weight: 3,
    make: (id) => new SyntaxError(`Unexpected token < in JSON at position ${id.length * 7}`),
  },
  { weight: 1, make: () => Object.assign(new Error('HTTP 401 Unauthorized'), { status: 401 }) },
  {
    weight: 1,
    make: () => withCode(new Error('ENOSPC: no space left on device, write'), 'ENOSPC'),
  },
];

function withCode(error: Error, code: string): Error {
  return Object.assign(error, { code });
}

class SimulatedCrash extends Error {}

/**
 * Runs a simulated three-stage pipeline against the ledger: plans the items, processes
 * them with a few percent of failures, crashes halfway, resumes from the last checkpoint
 * and finishes. Times are simulated (item durations of 40–900 ms), so the run itself
 * takes seconds while the recorded job spans minutes.
 */
export async function runDemo(ledger: Ledger, options: DemoOptions = {}): Promise<DemoRun> {
  const total = options.items ?? 2_000;
  const failRate = options.failRate ?? 0.04;
  const random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 31));
  const workers = options.workers ?? 8;
  const print = options.print ?? (() => undefined);
  const clock = { now: Date.now() };
  const at = () => new Date(clock.now).toISOString();
  /** In real time, waits until the simulated clock's now has come. */
  const keepTime = async () => {
    if (options.realTime) await sleep(Math.max(0, clock.now - Date.now()));
  };
  const leaseMs = options.realTime ? 4_000 : 30_000;

  const job = ledger.job(options.jobId, {
    metadata: { source: 'headway-demo', actor: 'demo-worker-1' },
  });
  // One projection object, so each read folds only what was appended since the last.
  const progressAndEta = combineProjections({ progress: jobProgress, eta: jobEta });
  const run: DemoRun = {
    jobId: job.jobId,
    crashedAfter: null,
    resumedFrom: null,
    released: [],
    etaHistory: [],
  };
  const itemIds = Array.from(
    { length: total },
    (_, index) => `doc-${String(index + 1).padStart(5, '0')}`,
  );
  const attempts = new Map<string, number>();
  let nextReport = 0;

  const report = async (force = false) => {
    const { progress, eta } = await ledger.project(job.jobId, progressAndEta);
    if (!force && progress.percent < nextReport) return;
    nextReport = Math.floor(progress.percent / 10) * 10 + 10;
    const estimate = estimateEta(eta, clock.now);
    run.etaHistory.push({
      percent: progress.percent,
      processed: progress.processed,
      rate: estimate.ratePerSecond,
      etaMs: estimate.etaMs,
      lowMs: estimate.range?.lowMs ?? null,
      highMs: estimate.range?.highMs ?? null,
    });
    print(describeProgress(progress, estimate));
    if (options.paceMs) await sleep(options.paceMs);
  };

  print(`Job ${job.jobId}: simulated crawl of ${total.toLocaleString('en-US')} documents`);
  await job.start(
    {
      name: 'demo crawl',
      kind: 'crawl',
      project: 'demo',
      dataset: 'example.org',
      total,
      unit: 'documents',
      stages,
      config: { workers, failRate },
      labels: { demo: 'true' },
    },
    { occurredAt: at() },
  );

  // Stage 1: discover the documents and plan them.
  await job.stage('discover', { total }, { occurredAt: at() });
  for (let start = 0; start < total; start += 500) {
    clock.now += 150 + Math.floor(random() * 100);
    const chunk = itemIds
      .slice(start, start + 500)
      .map((id) => ({ id, type: id.endsWith('7') ? 'pdf' : 'html' }));
    await keepTime();
    await job.plan(chunk, { occurredAt: at() });
  }

  // Stage 2: process, checkpointing every 100 documents; crash halfway.
  await job.stage('process', { total }, { occurredAt: at() });
  const crashAt = options.crash === false ? Infinity : Math.floor(total / 2) + 45;
  try {
    await processItems(0, crashAt);
  } catch (error) {
    if (!(error instanceof SimulatedCrash)) throw error;
    const { progress } = await ledger.project(job.jobId, progressAndEta);
    run.crashedAfter = progress.processed;
    print(
      `!! worker crashed after ${progress.processed} documents; restarting from the last checkpoint`,
    );
    await resumeAfterCrash();
  }
  await retryFailures();

  // Stage 3: publish the index.
  await job.stage('publish', { total: 3 }, { occurredAt: at() });
  for (const [index, step] of ['merge segments', 'write manifest', 'swap alias'].entries()) {
    clock.now += 800 + Math.floor(random() * 400);
    await keepTime();
    await job.progress(
      { processed: total, message: step, current: step, counts: { [`publish.${index}`]: 1 } },
      { occurredAt: at() },
    );
  }
  clock.now += 200;
  await keepTime();
  await job.complete({ indexed: total }, { occurredAt: at() });
  await report(true);
  return run;

  async function processItems(from: number, stopAfter: number): Promise<void> {
    const items = await ledger.project(job.jobId, jobItems);
    for (let index = from; index < total; index += workers) {
      const batch = itemIds
        .slice(index, index + workers)
        .filter((id) => (itemRecord(items, id)?.status ?? 'pending') === 'pending');
      if (batch.length === 0) continue;
      const started: EventInput[] = batch.map((itemId) => ({
        type: 'item.started',
        data: {
          itemId,
          attempt: nextAttempt(itemId),
          worker: `w${(index / workers) % 4}`,
          leaseMs,
        },
        occurredAt: at(),
      }));
      await job.record(started);
      if (index + workers > stopAfter) throw new SimulatedCrash();
      const outcomes = batch.map((itemId) => outcome(itemId));
      await keepTime();
      await job.record(outcomes);
      if ((index + workers) % 100 < workers) {
        await job.checkpoint(
          { nextIndex: index + workers },
          `processed through ${itemIds[Math.min(index + workers, total) - 1]}`,
          { occurredAt: at() },
        );
      }
      await report();
    }
  }

  async function resumeAfterCrash(): Promise<void> {
    // What a restarted worker does: find the checkpoint and the items left in flight.
    clock.now += leaseMs * 1.5; // the lease runs out before the restart notices
    await keepTime();
    const point = await job.resume({
      leaseExpiredBefore: clock.now,
      reason: 'restarted after a worker crash',
      occurredAt: at(),
    });
    const checkpoint = point.checkpoint as { nextIndex?: number } | null;
    run.resumedFrom = checkpoint;
    run.released = point.expired;
    await job.log(
      'warn',
      `restarted from checkpoint ${JSON.stringify(point.checkpoint)}`,
      { released: run.released.length },
      { occurredAt: at() },
    );
    await processItems(checkpoint?.nextIndex ?? 0, Infinity);
  }

  async function retryFailures(): Promise<void> {
    const items = await ledger.project(job.jobId, jobItems);
    const retry = allItems(items)
      .filter((item) => item.status === 'failed' && item.lastError?.retryable === true)
      .map((item) => item.itemId);
    if (retry.length === 0) return;
    await job.log(
      'info',
      `retrying ${retry.length} documents that failed with retryable errors`,
      null,
      { occurredAt: at() },
    );
    for (let index = 0; index < retry.length; index += workers) {
      const batch = retry.slice(index, index + workers);
      await job.record(
        batch.map((itemId) => ({
          type: 'item.started',
          data: { itemId, attempt: nextAttempt(itemId), worker: 'retry' },
          occurredAt: at(),
        })),
      );
      const outcomes = batch.map((itemId) => outcome(itemId, 0.35));
      await keepTime();
      await job.record(outcomes);
      await report();
    }
  }

  function nextAttempt(itemId: string): number {
    const attempt = (attempts.get(itemId) ?? 0) + 1;
    attempts.set(itemId, attempt);
    return attempt;
  }

  function outcome(itemId: string, failShare = failRate): EventInput {
    const durationMs = Math.round(40 + random() * random() * 860);
    clock.now += Math.round(durationMs / workers);
    const type = itemId.endsWith('7') ? 'pdf' : 'html';
    const draw = random();
    if (draw < failShare) {
      const error = pickFailure(itemId);
      return { type: 'item.failed', data: { itemId, type, durationMs, error }, occurredAt: at() };
    }
    if (draw < failShare + 0.006) {
      return {
        type: 'item.skipped',
        data: { itemId, type, reason: 'robots.txt disallows this path' },
        occurredAt: at(),
      };
    }
    return {
      type: 'item.completed',
      data: {
        itemId,
        type,
        durationMs,
        output: `s3://demo-index/${itemId}.json`,
        metrics: { bytes: Math.round(2_000 + random() * 80_000), links: Math.round(random() * 40) },
      },
      occurredAt: at(),
    };
  }

  function pickFailure(itemId: string): FailureError {
    const totalWeight = failureKinds.reduce((sum, kind) => sum + kind.weight, 0);
    let draw = random() * totalWeight;
    const kind =
      failureKinds.find((candidate) => (draw -= candidate.weight) < 0) ?? failureKinds[0]!;
    const thrown = kind.make(itemId);
    const { category, retryable } = classifyFailure({
      message: thrown.message,
      name: thrown.name,
      ...('code' in thrown ? { code: String(thrown.code) } : {}),
      ...('status' in thrown ? { status: Number(thrown.status) } : {}),
    });
    return {
      message: thrown.message,
      category,
      retryable,
      stage: 'process',
      ...('code' in thrown ? { code: String(thrown.code) } : {}),
    };
  }
}

function describeProgress(
  progress: {
    percent: number;
    processed: number;
    total: number | null;
    stage: string | null;
    counts: { completed: number; failed: number; skipped: number };
  },
  estimate: {
    ratePerSecond: number | null;
    etaMs: number | null;
    range?: { lowMs: number; highMs: number } | null;
  },
): string {
  const bar = '█'.repeat(Math.round(progress.percent / 5)).padEnd(20, '░');
  const rate = estimate.ratePerSecond === null ? '' : `  ${estimate.ratePerSecond.toFixed(1)}/s`;
  const eta =
    estimate.etaMs === null
      ? ''
      : `  ETA ${seconds(estimate.etaMs)}${estimate.range ? ` (${seconds(estimate.range.lowMs)}–${seconds(estimate.range.highMs)})` : ''}`;
  return `[${(progress.stage ?? '').padEnd(8)}] ${bar} ${progress.percent.toFixed(1).padStart(5)}%  ${progress.processed}/${progress.total ?? '?'}  ok ${progress.counts.completed}  failed ${progress.counts.failed}  skipped ${progress.counts.skipped}${rate}${eta}`;
}

function seconds(ms: number): string {
  return ms >= 60_000
    ? `${Math.floor(ms / 60_000)}m ${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`
    : `${(ms / 1000).toFixed(0)}s`;
}
