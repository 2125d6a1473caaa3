import type { Kysely } from 'kysely';
import type { Observable } from 'rxjs';
import type { Database } from '../schema/database.ts';
import type { EventInput } from '../schema/events.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { UpcasterIndex } from '../schema/upcast.ts';
import type { ClassificationRule } from '../projections/failure-classification.ts';
import { getItem } from '../projections/item-table.ts';
import { isDoneStatus, itemRecord, jobItems, type ItemEntry } from '../projections/job-items.ts';
import { jobProgress, type JobProgressState } from '../projections/job-progress.ts';
import { positionStatus } from '../projections/job-stages.ts';
import type { Projection } from '../projections/projection.ts';
import { executeAppend } from './append/append-statement.ts';
import { JobRecorder, type JobRecorderOptions } from './append/job-recorder.ts';
import { prepareStreams, type AppendResult, type StreamAppend } from './append/prepare-streams.ts';
import { resumeJob, type ResumeOptions, type ResumePoint } from './append/resume-job.ts';
import type { LogCursor } from './cursors.ts';
import { NotFoundError, type ExpectedVersion } from './errors.ts';
import { LiveReads, type SubscribeOptions, type WatchOptions } from './live/live-reads.ts';
import { PersistedProjections, type ProjectionStatus } from './persisted/projection-admin.ts';
import type { ProjectionRunnerOptions } from './persisted/projection-runner.ts';
import type { Generation } from './persisted/projection-tables.ts';
import { JobFolds, type ReplayResult } from './queries/job-folds.ts';
import { JobViews } from './queries/job-views.ts';
import type { JobStatusView, JobThroughput, JobView, JobsQuery } from './queries/job-views.ts';
import type { StageMetric } from './queries/job-views.ts';
import { queryTimeline, type TimelinePage, type TimelineQuery } from './queries/timeline-query.ts';
import type { LedgerLocation, LedgerStore } from './store/ledger-store.ts';
import { LogReader, type ReadAllOptions, type ReadAllPage } from './store/log-reads.ts';
import type { ReadStreamOptions } from './store/log-reads.ts';

export type { SubscribeOptions, WatchOptions } from './live/live-reads.ts';
export type { ProjectionStatus } from './persisted/projection-admin.ts';
export type { ReplayResult } from './queries/job-folds.ts';
export type { ReadAllOptions, ReadAllPage, ReadStreamOptions } from './store/log-reads.ts';

/**
 * The progress ledger: an append-only event log with gap-safe reads, live streams, job
 * views and per-job recording handles. Open one with `openLedger`. Each method hands over
 * to the module that owns its capability (docs/architecture.md, "Effects").
 *
 * @example
 * const ledger = await openLedger();
 * await ledger.append('job-1', [{ type: 'job.started', data: { name: 'crawl', kind: 'crawl', project: 'web' } }]);
 * const progress = await ledger.project('job-1', jobProgress);
 */
export class Ledger {
  /** The Kysely instance over the log; for queries the ledger does not offer yet. */
  readonly db: Kysely<Database>;
  readonly location: LedgerLocation;
  private readonly log: LogReader;
  private readonly live: LiveReads;
  private readonly views: JobViews;
  private readonly folds: JobFolds;
  private readonly projections: PersistedProjections;

  constructor(
    private readonly store: LedgerStore,
    upcasters: UpcasterIndex,
    foldCacheJobs = 32,
    /** Rules that classify failures sent without a category, recorded at append. */
    readonly failureRules?: readonly ClassificationRule[],
  ) {
    this.db = store.db;
    this.location = store.location;
    this.log = new LogReader(store.db, upcasters);
    this.folds = new JobFolds(this.log, foldCacheJobs);
    this.projections = new PersistedProjections(store, this.log);
    this.views = new JobViews({
      log: this.log,
      cachedState: (jobId) => this.projections.cachedJobState(jobId),
    });
    this.live = new LiveReads({
      log: this.log,
      wakeUps: store.wakeUps,
      jobs: (query) => this.views.jobs(query),
    });
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
    return resumeJob(this, jobId, options);
  }

  // Reading the log

  /** Reads one stream in version order. */
  readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    return this.log.readStream(streamId, options);
  }

  /** Reads the whole log after a log cursor, gap-safe: no event is ever skipped. */
  readAll(options: ReadAllOptions = {}): Promise<ReadAllPage> {
    return this.log.readLog(options, { gapSafe: true });
  }

  /** `readAll` page after page until caught up, so a replay never holds the whole log. */
  readAllBatches(options: ReadAllOptions = {}): AsyncGenerator<ReadAllPage> {
    return this.log.readLogBatches(options);
  }

  /** The head version of a stream; 0 when it does not exist. */
  streamVersion(streamId: string): Promise<number> {
    return this.log.streamVersion(streamId);
  }

  /** A log cursor that every event committed before now precedes. */
  liveCursor(): Promise<LogCursor> {
    return this.log.liveCursor();
  }

  /** One job's or all jobs' events, filtered and paged by timeline cursor, for audits. */
  timeline(query: TimelineQuery = {}): Promise<TimelinePage> {
    return queryTimeline(this.log, query);
  }

  // Folding

  /**
   * Folds one job's events through a projection; a job read again folds only what was
   * appended since. The state is shared with later reads: treat it as read-only.
   */
  project<S>(jobId: string, projection: Projection<S>): Promise<S> {
    return this.folds.project(jobId, projection);
  }

  /** Streams the whole log (or what follows `after`) through a projection in batches. */
  replay<S>(
    projection: Projection<S>,
    options: { after?: LogCursor | string; state?: S; batchSize?: number } = {},
  ): Promise<ReplayResult<S>> {
    return this.folds.replay(projection, options);
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

  // Job views

  /**
   * Where a job stands now: stored progress plus the events after it, its ETA as of `now`,
   * and its children rolled up. Null for an unknown job.
   *
   * @example
   * const view = await ledger.status(jobId);
   * console.log(view?.progress.percent, view?.eta.etaMs);
   */
  status(jobId: string, now?: number): Promise<JobStatusView | null> {
    return this.views.status(jobId, now);
  }

  /** A job's processed count over time (at most 128 points) and its ETA now, for charts. */
  throughput(jobId: string): Promise<JobThroughput | null> {
    return this.views.throughput(jobId);
  }

  /** The job list: by project, kind, status or parent, or only active jobs; newest first. */
  jobs(query: JobsQuery = {}): Promise<JobView[]> {
    return this.views.jobs(query);
  }

  /**
   * A page of `jobs` and the jobs page cursor of the next page, null on the last page.
   *
   * @example
   * const first = await ledger.jobsPage({ project: 'web', limit: 50 });
   * const second = await ledger.jobsPage({ project: 'web', limit: 50, after: first.nextCursor! });
   */
  jobsPage(query: JobsQuery = {}): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    return this.views.jobsPage(query);
  }

  /** Every project with its jobs counted by status. */
  projectOverview(query: Pick<JobsQuery, 'active' | 'finishedVisibleMs' | 'now' | 'jobId'> = {}) {
    return this.views.projects(query);
  }

  /** Count, mean and p95 duration and throughput of each stage name, per job kind. */
  stageMetrics(query: Pick<JobsQuery, 'project' | 'kind'> = {}): Promise<StageMetric[]> {
    return this.views.stageMetrics(query);
  }

  /**
   * True when the item completed or was skipped, for producers that skip done work.
   *
   * @example
   * if (!(await ledger.isProcessed(jobId, url))) await crawl(url);
   */
  async isProcessed(jobId: string, itemId: string): Promise<boolean> {
    const state = await this.views.jobState(jobId, [itemId]);
    const position = state ? getItem(state.progress.items, itemId) : undefined;
    const status = position === undefined ? undefined : positionStatus(position);
    return isDoneStatus(status);
  }

  /**
   * One item of a job: status, stage, attempts, lease, duration and last error. Throws
   * `NotFoundError` for an unknown job or item.
   */
  async item(jobId: string, itemId: string): Promise<ItemEntry> {
    const state = await this.project(jobId, jobItems);
    if (state.version === 0) throw new NotFoundError(`Job '${jobId}'`);
    const record = itemRecord(state, itemId);
    if (!record) throw new NotFoundError(`Item '${itemId}' of job '${jobId}'`);
    return { itemId, ...record };
  }

  // Persisted projections

  /** Keeps the persisted projections current in the background until the returned stop. */
  runProjections(options: ProjectionRunnerOptions = {}): { stop(): Promise<void> } {
    return this.projections.run(options);
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

  /** Stops the projection runners and closes the connections (and the PGlite folder lock). */
  async close(): Promise<void> {
    await this.projections.stopAll();
    await this.store.close();
  }
}
