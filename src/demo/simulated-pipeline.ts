import type { EventInput, JsonValue } from '../../schema/events.ts';
import { allItems, itemRecord, jobItems } from '../../projections/job-items.ts';
import type { JobRecorder, JobRecorderOptions, JobResumer } from '../append/job-recorder.ts';
import { ProgressReporter } from './demo-progress.ts';
import type { EtaSample, JobProjector } from './demo-progress.ts';
import { seededRandom } from './seeded-random.ts';
import { ItemSimulator, SimulatedClock } from './simulated-work.ts';

export type { EtaSample } from './demo-progress.ts';

/**
 * What the demo needs of a ledger: to record a job, to fold it as it stands, and to resume
 * it. A `Ledger` is one; so is a `HeadwayClient`, through a server (its folds are made
 * from the job's events read over HTTP, only the new ones each time).
 */
export interface DemoLedger extends JobProjector, JobResumer {
  job(jobId?: string, options?: JobRecorderOptions): JobRecorder<unknown>;
}

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
  /** Stops the run at its next step (it rejects with the signal's reason); the job stays open. */
  signal?: AbortSignal;
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

class SimulatedCrash extends Error {}

/**
 * Runs a simulated three-stage pipeline against the ledger: plans the items, processes
 * them with a few percent of failures, crashes halfway, resumes from the last checkpoint
 * and finishes. Times are simulated (item durations of 40–900 ms), so the run itself
 * takes seconds while the recorded job spans minutes.
 */
export async function runDemo(ledger: DemoLedger, options: DemoOptions = {}): Promise<DemoRun> {
  const pipeline = new SimulatedPipeline(ledger, options);
  await pipeline.start();
  await pipeline.discover();
  await pipeline.processWithCrash();
  await pipeline.retryFailures();
  await pipeline.publish();
  return pipeline.run;
}

/** One demo run: its settings, its job, and the steps `runDemo` takes in order. */
class SimulatedPipeline {
  readonly run: DemoRun;
  private readonly total: number;
  private readonly failRate: number;
  private readonly workers: number;
  private readonly leaseMs: number;
  private readonly random: () => number;
  private readonly print: (line: string) => void;
  private readonly clock: SimulatedClock;
  private readonly job: JobRecorder<unknown>;
  private readonly itemIds: string[];
  private readonly items: ItemSimulator;
  private readonly progress: ProgressReporter;

  constructor(
    private readonly ledger: DemoLedger,
    private readonly options: DemoOptions,
  ) {
    this.total = options.items ?? 2_000;
    this.failRate = options.failRate ?? 0.04;
    this.random = seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 31));
    this.workers = options.workers ?? 8;
    this.print = options.print ?? (() => undefined);
    this.clock = new SimulatedClock(options.realTime === true, options.signal);
    this.leaseMs = options.realTime ? 4_000 : 30_000;
    this.job = ledger.job(options.jobId, {
      metadata: { source: 'headway-demo', actor: 'demo-worker-1' },
    });
    this.run = {
      jobId: this.job.jobId,
      crashedAfter: null,
      resumedFrom: null,
      released: [],
      etaHistory: [],
    };
    this.itemIds = Array.from(
      { length: this.total },
      (_, index) => `doc-${String(index + 1).padStart(5, '0')}`,
    );
    this.items = new ItemSimulator(this.random, this.clock, this.workers, this.failRate);
    this.progress = new ProgressReporter(ledger, this.job.jobId, this.clock, {
      print: this.print,
      paceMs: options.paceMs,
      history: this.run.etaHistory,
    });
  }

  /** Opens the job with its stages, size and settings. */
  async start(): Promise<void> {
    this.print(
      `Job ${this.job.jobId}: simulated crawl of ${this.total.toLocaleString('en-US')} documents`,
    );
    await this.job.start(
      {
        name: 'demo crawl',
        kind: 'crawl',
        project: 'demo',
        dataset: 'example.org',
        total: this.total,
        unit: 'documents',
        stages,
        config: { workers: this.workers, failRate: this.failRate },
        labels: { demo: 'true' },
      },
      { occurredAt: this.clock.at() },
    );
  }

  /** Stage 1: discover the documents and plan them, 500 at a time. */
  async discover(): Promise<void> {
    const { job, clock, total } = this;
    await job.stage('discover', { total }, { occurredAt: clock.at() });
    for (let start = 0; start < total; start += 500) {
      clock.now += 150 + Math.floor(this.random() * 100);
      const chunk = this.itemIds
        .slice(start, start + 500)
        .map((id) => ({ id, type: id.endsWith('7') ? 'pdf' : 'html' }));
      await clock.keepTime();
      await job.plan(chunk, { occurredAt: clock.at() });
    }
  }

  /** Stage 2: process, checkpointing every 100 documents; crash halfway (unless told not to). */
  async processWithCrash(): Promise<void> {
    await this.job.stage('process', { total: this.total }, { occurredAt: this.clock.at() });
    const crashAt = this.options.crash === false ? Infinity : Math.floor(this.total / 2) + 45;
    try {
      await this.processItems(0, crashAt);
    } catch (error) {
      if (!(error instanceof SimulatedCrash)) throw error;
      this.run.crashedAfter = await this.progress.processed();
      this.print(
        `!! worker crashed after ${this.run.crashedAfter} documents; restarting from the last checkpoint`,
      );
      await this.resumeAfterCrash();
    }
  }

  /** Tries once more the items whose failure was retryable, with fewer failures. */
  async retryFailures(): Promise<void> {
    const { job, clock, workers } = this;
    const items = await this.ledger.project(job.jobId, jobItems);
    const retry = allItems(items)
      .filter((item) => item.status === 'failed' && item.lastError?.retryable === true)
      .map((item) => item.itemId);
    if (retry.length === 0) return;
    await job.log(
      'info',
      `retrying ${retry.length} documents that failed with retryable errors`,
      null,
      { occurredAt: clock.at() },
    );
    for (let index = 0; index < retry.length; index += workers) {
      const batch = retry.slice(index, index + workers);
      await job.record(
        batch.map((itemId) => ({
          type: 'item.started',
          data: { itemId, attempt: this.items.nextAttempt(itemId), worker: 'retry' },
          occurredAt: clock.at(),
        })),
      );
      const outcomes = batch.map((itemId) => this.items.outcome(itemId, 0.35));
      await clock.keepTime();
      await job.record(outcomes);
      await this.progress.report();
    }
  }

  /** Stage 3: publish the index in three steps, then complete the job. */
  async publish(): Promise<void> {
    const { job, clock, total } = this;
    await job.stage('publish', { total: 3 }, { occurredAt: clock.at() });
    for (const [index, step] of ['merge segments', 'write manifest', 'swap alias'].entries()) {
      clock.now += 800 + Math.floor(this.random() * 400);
      await clock.keepTime();
      await job.progress(
        { processed: total, message: step, current: step, counts: { [`publish.${index}`]: 1 } },
        { occurredAt: clock.at() },
      );
    }
    clock.now += 200;
    await clock.keepTime();
    await job.complete({ indexed: total }, { occurredAt: clock.at() });
    await this.progress.report(true);
  }

  /**
   * Works through the pending items from `from`, a batch of `workers` at a time; throws
   * `SimulatedCrash` once a batch past `stopAfter` has started (its items stay in flight).
   */
  private async processItems(from: number, stopAfter: number): Promise<void> {
    const { job, clock, total, workers, itemIds } = this;
    const items = await this.ledger.project(job.jobId, jobItems);
    for (let index = from; index < total; index += workers) {
      const batch = itemIds
        .slice(index, index + workers)
        .filter((id) => (itemRecord(items, id)?.status ?? 'pending') === 'pending');
      if (batch.length === 0) continue;
      const started: EventInput[] = batch.map((itemId) => ({
        type: 'item.started',
        data: {
          itemId,
          attempt: this.items.nextAttempt(itemId),
          worker: `w${(index / workers) % 4}`,
          leaseMs: this.leaseMs,
        },
        occurredAt: clock.at(),
      }));
      await job.record(started);
      if (index + workers > stopAfter) throw new SimulatedCrash();
      const outcomes = batch.map((itemId) => this.items.outcome(itemId));
      await clock.keepTime();
      await job.record(outcomes);
      if ((index + workers) % 100 < workers) {
        await job.checkpoint(
          { nextIndex: index + workers },
          `processed through ${itemIds[Math.min(index + workers, total) - 1]}`,
          { occurredAt: clock.at() },
        );
      }
      await this.progress.report();
    }
  }

  /** What a restarted worker does: find the checkpoint and the items left in flight. */
  private async resumeAfterCrash(): Promise<void> {
    const { job, clock, run } = this;
    clock.now += this.leaseMs * 1.5; // the lease runs out before the restart notices
    await clock.keepTime();
    const point = await job.resume({
      leaseExpiredBefore: clock.now,
      reason: 'restarted after a worker crash',
      occurredAt: clock.at(),
    });
    const checkpoint = point.checkpoint as { nextIndex?: number } | null;
    run.resumedFrom = checkpoint;
    run.released = point.expired;
    await job.log(
      'warn',
      `restarted from checkpoint ${JSON.stringify(point.checkpoint)}`,
      { released: run.released.length },
      { occurredAt: clock.at() },
    );
    await this.processItems(checkpoint?.nextIndex ?? 0, Infinity);
  }
}
