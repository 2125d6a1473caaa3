import type { Kysely } from 'kysely';
import type { Observable } from 'rxjs';
import type { Database } from '../schema/database.ts';
import type { EventInput } from '../schema/events.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { UpcasterIndex } from '../schema/upcast.ts';
import type { ClassificationRule } from '../projections/failure-classification.ts';
import { jobProgress, type JobProgressState } from '../projections/job-progress.ts';
import { jobSummary, summarize } from '../projections/job-summary.ts';
import type { Projection } from '../projections/projection.ts';
import { executeAppend } from './append/append-statement.ts';
import { JobRecorder, type JobRecorderOptions } from './append/job-recorder.ts';
import { prepareStreams, type AppendResult, type StreamAppend } from './append/prepare-streams.ts';
import { resumeJob, type ResumeOptions, type ResumePoint } from './append/resume-job.ts';
import { parseLogCursor, type LogCursor } from './cursors.ts';
import type { ExpectedVersion } from './errors.ts';
import { LiveReads, type SubscribeOptions, type WatchOptions } from './live/live-reads.ts';
import { PersistedProjections, type ProjectionStatus } from './persisted/projection-admin.ts';
import type { ProjectionRunnerOptions } from './persisted/projection-runner.ts';
import { ConditionWatcher } from './alerts/condition-watcher.ts';
import { readJobSnapshots } from './queries/job-states.ts';
import { LedgerWebhooks } from './webhooks/ledger-webhooks.ts';
import { WebhookDeliverer } from './webhooks/webhook-deliverer.ts';
import type { WebhookDelivererOptions } from './webhooks/webhook-deliverer.ts';
import type { ConditionWatcherOptions } from './alerts/condition-watcher.ts';
import type { JobViewsContext } from './queries/job-state.ts';
import { defaultConditionSettings } from '../projections/job-conditions.ts';
import type { ConditionSettings } from '../projections/job-conditions.ts';
import {
  runRetention,
  type RetentionOptions,
  type RetentionResult,
} from './retention/run-retention.ts';
import type { Generation } from './persisted/projection-tables.ts';
import { LedgerReads } from './queries/ledger-reads.ts';
import type { JobView, JobsQuery } from './queries/job-views.ts';
import type { LedgerLocation, LedgerStore } from './store/ledger-store.ts';
import { LogReader, type ReadAllPage } from './store/log-reads.ts';
import {
  defaultReplayWaitMs,
  replicationStatus,
  waitForReplay,
  type ReplicationStatus,
} from './store/replica.ts';

export type { SubscribeOptions, WatchOptions } from './live/live-reads.ts';
export type { ProjectionStatus } from './persisted/projection-admin.ts';
export type { ReplayResult } from './queries/job-folds.ts';
export { LedgerReads } from './queries/ledger-reads.ts';
export type { ReadAllOptions, ReadAllPage, ReadStreamOptions } from './store/log-reads.ts';
export type { ReplicationStatus } from './store/replica.ts';

/** Where a read that waited for an append was answered, and how long it waited. */
export interface ReadsAfter {
  /** The reads to answer from: the replica's once it has replayed the append, else the primary's. */
  reads: LedgerReads;
  /** `replica` when the replica had replayed the append in time (or there is no replica: `primary`). */
  source: 'replica' | 'primary';
  /** How long the replica was waited for, in milliseconds. */
  waitedMs: number;
}

/**
 * The progress ledger: an append-only event log with gap-safe reads, live streams, job
 * views and per-job recording handles. Open one with `openLedger`. Each method hands over
 * to the module that owns its capability (docs/architecture.md, "Effects"). With a read
 * replica, its reads, views and live streams come from the replica; appends, resume and the
 * projection runners stay on the primary.
 *
 * @example
 * const ledger = await openLedger();
 * await ledger.append('job-1', [{ type: 'job.started', data: { name: 'crawl', kind: 'crawl', project: 'web' } }]);
 * const progress = await ledger.project('job-1', jobProgress);
 */
export class Ledger extends LedgerReads {
  /** The Kysely instance over the log on the primary; for queries the ledger does not offer yet. */
  readonly db: Kysely<Database>;
  readonly location: LedgerLocation;
  /** The same reads from the primary: what must see the latest append. `this` without a replica. */
  readonly primary: LedgerReads;
  private readonly live: LiveReads;
  private readonly projections: PersistedProjections;
  /** The primary's views, which the condition watcher judges. */
  private readonly primaryViews: JobViewsContext;
  /** Webhook subscriptions and their deliveries (docs/alerts.md). */
  readonly webhooks: LedgerWebhooks;

  constructor(
    private readonly store: LedgerStore,
    upcasters: UpcasterIndex,
    foldCacheJobs = 32,
    /** Rules that classify failures sent without a category, recorded at append. */
    readonly failureRules?: readonly ClassificationRule[],
    conditionSettings: ConditionSettings = defaultConditionSettings,
  ) {
    const primaryLog = new LogReader(store.db, upcasters);
    const projections = new PersistedProjections(store, primaryLog);
    const cachedState = (jobId: string) => projections.cachedJobState(jobId);
    const replica = store.replica;
    super(
      replica ? new LogReader(replica.db, upcasters) : primaryLog,
      cachedState,
      foldCacheJobs,
      conditionSettings,
    );
    this.db = store.db;
    this.location = store.location;
    this.projections = projections;
    this.primaryViews = { log: primaryLog, cachedState, conditionSettings };
    this.webhooks = new LedgerWebhooks(store.db, primaryLog);
    this.primary = replica
      ? new LedgerReads(primaryLog, cachedState, foldCacheJobs, conditionSettings)
      : this;
    this.live = new LiveReads({
      log: this.log,
      // A standby cannot LISTEN: its live reads poll.
      wakeUps: replica?.wakeUps ?? store.wakeUps,
      jobs: (query) => this.jobs(query),
    });
  }

  // Read replica

  /** True when the ledger reads from a replica (`readDatabaseUrl`). */
  get hasReplica(): boolean {
    return this.store.replica !== undefined;
  }

  /**
   * The reads to answer with once the replica has replayed `after` (an append's `cursor`):
   * the replica's if it gets there within `timeoutMs` (default 2,000), else the primary's.
   * Without a replica, the primary's at once.
   *
   * @example
   * const { cursor } = await ledger.append(jobId, events);
   * const { reads, source } = await ledger.readsAfter(cursor);
   * const view = await reads.status(jobId); // sees the append; `source` says from where
   */
  async readsAfter(
    after: LogCursor | string,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ReadsAfter> {
    const cursor = parseLogCursor(after);
    const replica = this.store.replica;
    if (!replica) return { reads: this.primary, source: 'primary', waitedMs: 0 };
    const { replayed, waitedMs } = await waitForReplay(
      replica.db,
      cursor,
      options.timeoutMs ?? defaultReplayWaitMs,
      options.signal,
    );
    return replayed
      ? { reads: this, source: 'replica', waitedMs }
      : { reads: this.primary, source: 'primary', waitedMs };
  }

  /** How far the read replica trails the primary; null without one. */
  async replication(): Promise<ReplicationStatus | null> {
    const replica = this.store.replica;
    return replica ? replicationStatus(this.db, replica) : null;
  }

  // Appending

  /**
   * Appends events to one stream, atomically, in one round trip. Re-appending the same
   * event ids returns the original positions and writes nothing. A job's first batch must
   * open with `job.started`; otherwise it throws `JobNotStartedError` and writes nothing.
   *
   * @example
   * await ledger.append('job-1', [{ type: 'item.completed', data: { itemId: 'a' } }], { expectedVersion: 3 });
   */
  async append(
    streamId: string,
    events: readonly EventInput[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const { expectedVersion } = options;
    const [result] = await this.appendMany([
      { streamId, events, ...(expectedVersion === undefined ? {} : { expectedVersion }) },
    ]);
    return result!;
  }

  /** Appends to several streams in one transaction: all of them, or none. */
  async appendMany(streams: readonly StreamAppend[]): Promise<AppendResult[]> {
    // Async, so that a refused input is a rejection like every other refusal.
    return executeAppend(this.db, prepareStreams(streams, new Date(), this.failureRules));
  }

  /**
   * A recording handle for one job; a new id is generated when none is given.
   *
   * @example
   * const job = ledger.job();
   * await job.start({ name: 'nightly crawl', kind: 'crawl', project: 'web', total: 100 });
   * await job.itemCompleted('page-1', { durationMs: 120 });
   */
  job(jobId?: string, options?: JobRecorderOptions): JobRecorder {
    if (this.failureRules === undefined) return new JobRecorder(this, jobId, options);
    // The recorder sees more of a thrown error (name, status); its own rules come first.
    const failureRules = [...(options?.failureRules ?? []), ...this.failureRules];
    return new JobRecorder(this, jobId, { ...options, failureRules });
  }

  /**
   * Resumes a crashed job: releases the items whose lease expired, records `job.resumed`,
   * and returns the last checkpoint and what is left to do.
   *
   * @example
   * const { checkpoint, pending } = await ledger.resume(jobId, { leaseExpiredBefore: new Date() });
   */
  resume(jobId: string, options: ResumeOptions = {}): Promise<ResumePoint> {
    // The primary's fold: a replica's could be behind the version resume appends at.
    return resumeJob(
      {
        project: (id, projection) => this.primary.project(id, projection),
        append: (...args) => this.append(...args),
      },
      jobId,
      options,
    );
  }

  // Live

  /**
   * Follows the log from a log cursor, page by page: catches up, then waits for new events.
   * Ends when `signal` aborts.
   *
   * @example
   * for await (const page of ledger.follow({ after: '0:0', types: ['item.failed'] }, signal)) save(page.next);
   */
  follow(options: SubscribeOptions = {}, signal?: AbortSignal): AsyncGenerator<ReadAllPage> {
    return this.live.follow(options, signal);
  }

  /**
   * An Observable of recorded events after a log cursor, caught up and then live.
   *
   * @example
   * ledger.subscribe({ streamIds: [jobId] }).subscribe((event) => console.log(event.type));
   */
  subscribe(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return this.live.subscribe(options);
  }

  /** Like `subscribe`, a page of events at a time. */
  subscribePages(options: SubscribeOptions = {}): Observable<ReadAllPage> {
    return this.live.subscribePages(options);
  }

  /**
   * A job's progress, live: the current snapshot, then one after every change.
   *
   * @example
   * ledger.watch(jobId, { throttleMs: 100 }).subscribe((progress) => render(progress.percent));
   */
  watch(jobId: string, options: WatchOptions = {}): Observable<JobProgressState> {
    return this.live.watchFold(jobId, jobProgress, options);
  }

  /** Any one-job projection, live, as `watch` does for progress. */
  watchFold<S>(jobId: string, projection: Projection<S>, options?: WatchOptions): Observable<S> {
    return this.live.watchFold(jobId, projection, options);
  }

  /** The job list, live: read first, then after each change, at most once per `throttleMs`. */
  watchJobs(query: JobsQuery = {}, options: WatchOptions = {}): Observable<JobView[]> {
    return this.live.watchJobs(query, options);
  }

  /** One project's jobs, live, as `watchJobs` gives them. */
  watchProject(project: string, query: Omit<JobsQuery, 'project'> = {}, options?: WatchOptions) {
    return this.live.watchJobs({ ...query, project }, options);
  }

  /** Every job, live, as `watchJobs` gives them. */
  watchAll(query: JobsQuery = {}, options?: WatchOptions): Observable<JobView[]> {
    return this.live.watchJobs(query, options);
  }

  // Persisted projections

  /** Keeps the persisted projections current in the background until the returned stop. */
  runProjections(options: ProjectionRunnerOptions = {}): { stop(): Promise<void> } {
    return this.projections.run(options);
  }

  /**
   * Records jobs' conditions (stalled, at risk, late, failure rate) in the log as they are
   * raised and cleared, in the background until the returned stop; with several processes,
   * one judges at a time and each change is written once (docs/alerts.md).
   *
   * @example
   * const watcher = ledger.watchConditions({ intervalMs: 5_000 });
   * await watcher.stop();
   */
  watchConditions(options: ConditionWatcherOptions = {}): ConditionWatcher {
    const watcher = this.conditionWatcher(options);
    watcher.start();
    return watcher;
  }

  /** A condition watcher over this ledger, not started: `sweep()` judges once. */
  conditionWatcher(options: ConditionWatcherOptions = {}): ConditionWatcher {
    return new ConditionWatcher(
      {
        store: this.store,
        views: this.primaryViews,
        appendMany: (streams) => this.appendMany(streams),
      },
      options,
    );
  }

  /**
   * Delivers webhooks in the background until the returned stop: enqueues what new events
   * call for, once per subscription, and sends them at least once, signed, retried with
   * backoff; with several processes, one delivers at a time (docs/alerts.md).
   *
   * @example
   * const deliverer = ledger.deliverWebhooks({ publicUrl: 'https://headway.example.com' });
   * await deliverer.stop();
   */
  deliverWebhooks(options: WebhookDelivererOptions = {}): WebhookDeliverer {
    const deliverer = this.webhookDeliverer(options);
    deliverer.start();
    return deliverer;
  }

  /** A webhook deliverer over this ledger, not started: `deliverOnce()` runs one round. */
  webhookDeliverer(options: WebhookDelivererOptions = {}): WebhookDeliverer {
    return new WebhookDeliverer(
      {
        db: this.db,
        log: this.primaryViews.log,
        progressOf: (jobIds) => readJobSnapshots(this.primaryViews, jobIds),
        store: this.store,
      },
      options,
    );
  }

  /** Folds what the persisted projections have not seen yet, unless a runner elsewhere holds them. */
  catchUpProjections(options: ProjectionRunnerOptions = {}): Promise<string[]> {
    return this.projections.catchUp(options);
  }

  /** Rebuilds persisted projections (all, or the one named) into a new generation. */
  rebuild(name?: string, options: { timeoutMs?: number } = {}): Promise<Generation[]> {
    return this.projections.rebuild(name, options);
  }

  /** Each persisted projection's generations, checkpoints and how far they trail the log. */
  projectionStatus(): Promise<ProjectionStatus[]> {
    return this.projections.status();
  }

  /**
   * Archives finished jobs older than `olderThan`: each month partition of the log whose jobs
   * all finished before the cutoff is written to an NDJSON archive, recorded with its jobs'
   * views, then detached and dropped (src/retention/). `dryRun` returns the plan only.
   *
   * @example
   * const result = await ledger.retention({ olderThan: '90d', archiveDir: '/var/headway', dryRun: true });
   */
  async retention(options: RetentionOptions): Promise<RetentionResult> {
    // The primary's views: what is archived must be the latest of each job.
    const status = (jobId: string, now: number) => this.primary.status(jobId, now);
    const summary = async (jobId: string) =>
      summarize(await this.primary.project(jobId, jobSummary));
    return runRetention({ db: this.db, status, summary }, options);
  }

  /** Stops the projection runners and closes the connections (and the PGlite folder lock). */
  async close(): Promise<void> {
    await this.projections.stopAll();
    await this.store.close();
  }
}
