import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import {
  asyncScheduler,
  defer,
  distinctUntilChanged,
  map,
  mergeMap,
  Observable,
  startWith,
  switchMap,
  throttleTime,
  throwError,
} from 'rxjs';
import { z } from 'zod';
import type { Database } from '../schema/database.ts';
import type { EventInput } from '../schema/events.ts';
import { limits } from '../schema/limits.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { UpcasterIndex } from '../schema/upcast.ts';
import { accumulatorFor } from '../projections/projection.ts';
import type { Accumulator, Projection } from '../projections/projection.ts';
import { jobProgress } from '../projections/job-progress.ts';
import { positionStatus } from '../projections/job-stages.ts';
import type { JobProgressState } from '../projections/job-progress.ts';
import { executeAppend } from './append/append-statement.ts';
import { prepareStreams } from './append/prepare-streams.ts';
import type { AppendResult, StreamAppend } from './append/prepare-streams.ts';
import { parseLogCursor, logStart } from './cursors.ts';
import { LogReader } from './store/log-reads.ts';
import type { ReadAllOptions, ReadAllPage, ReadStreamOptions } from './store/log-reads.ts';

export type { ReadAllOptions, ReadAllPage, ReadStreamOptions } from './store/log-reads.ts';
import type { LedgerLocation, LedgerStore } from './store/ledger-store.ts';
import { followLog } from './live/log-follower.ts';
import { JobViews } from './queries/job-views.ts';
import { FoldCache } from './queries/fold-cache.ts';
import type {
  JobStatusView,
  JobThroughput,
  JobView,
  JobsQuery,
  StageMetric,
} from './queries/job-views.ts';
import { jobsProjection, persistedProjections } from './persisted/persisted-projection.ts';
import type { JobEtaState } from '../projections/job-eta.ts';
import { ProjectionRunner } from './persisted/projection-runner.ts';
import type { ProjectionRunnerOptions, RunnerContext } from './persisted/projection-runner.ts';
import { readGenerations, startBuilding } from './persisted/projection-tables.ts';
import type { Generation } from './persisted/projection-tables.ts';
import { resumeJob } from './append/resume-job.ts';
import type { ResumeOptions, ResumePoint } from './append/resume-job.ts';
import { getItem } from '../projections/item-table.ts';
import { itemRecord, jobItems, type ItemEntry } from '../projections/job-items.ts';
import type { LogCursor } from './cursors.ts';
import { InvalidInputError, NotFoundError, type ExpectedVersion } from './errors.ts';
import { JobRecorder } from './append/job-recorder.ts';
import type { JobRecorderOptions } from './append/job-recorder.ts';
import type { ClassificationRule } from '../projections/failure-classification.ts';
import { toValidationIssues } from './validation.ts';
import { listJobs, type JobListing, type ListJobsOptions } from './queries/list-jobs.ts';
import { queryTimeline, type TimelinePage, type TimelineQuery } from './queries/timeline-query.ts';

/** Options of `subscribe` and `follow`: a filter, a starting cursor, and pacing. */
export interface SubscribeOptions extends Omit<ReadAllOptions, 'limit'> {
  /** Events per read while catching up (default 1,000). */
  batchSize?: number;
  /** Longest wait between polls when no wake-up arrives (default 1,000 ms). */
  pollIntervalMs?: number;
}

/** Options of `watch`. */
export interface WatchOptions {
  /** Emit at most one snapshot per this many milliseconds, the latest (default 0: every change). */
  throttleMs?: number;
  /** Longest wait between polls when no wake-up arrives (default 1,000 ms). */
  pollIntervalMs?: number;
}

/** A persisted projection's generation and how many events it has yet to fold. */
export interface ProjectionStatus {
  name: string;
  /** The version of the projection's code in this process. */
  codeVersion: number;
  /** Null before the projection was ever run. */
  generation: Generation | null;
  lag: { events: number; capped: boolean };
}

/** What `replay` reports when it has caught up. */
export interface ReplayResult<S> {
  state: S;
  /** Continue a later replay from here. */
  cursor: LogCursor;
  events: number;
  elapsedMs: number;
  eventsPerSecond: number;
}

const pacingSchema = z.strictObject({
  batchSize: z.number().int().min(1).max(limits.readPage).optional(),
  pollIntervalMs: z.number().int().min(10).max(60_000).optional(),
  throttleMs: z.number().int().min(0).max(60_000).optional(),
});

/**
 * The progress ledger: an append-only event log with gap-safe reads, replays and
 * per-job recording handles. Open one with `openLedger`.
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
  private readonly views: JobViews;
  private readonly runners = new Map<string, ProjectionRunner<unknown>>();
  /** Recent one-job folds of `project`, so a job read again folds only its new events. */
  private readonly folds: FoldCache;

  constructor(
    private readonly store: LedgerStore,
    private readonly upcasters: UpcasterIndex,
    foldCacheJobs = 32,
    /** Rules that classify failures sent without a category, recorded at append. */
    readonly failureRules?: readonly ClassificationRule[],
  ) {
    this.folds = new FoldCache(foldCacheJobs);
    this.db = store.db;
    this.location = store.location;
    this.log = new LogReader(store.db, upcasters);
    this.views = new JobViews({
      log: this.log,
      cachedState: (jobId) =>
        this.runners.get(jobsProjection.name)?.cachedState(jobId) as JobEtaState | undefined,
    });
  }

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
    const [result] = await this.appendMany([
      { streamId, events, ...(options.expectedVersion === undefined ? {} : options) },
    ]);
    return result!;
  }

  /**
   * Appends to several streams in one transaction: all of them, or none. One stream
   * refused (a conflict, a job never started) refuses the whole call.
   */
  async appendMany(streams: readonly StreamAppend[]): Promise<AppendResult[]> {
    const prepared = prepareStreams(streams, new Date(), this.failureRules);
    return executeAppend(this.db, prepared);
  }

  /** Reads one stream in version order. */
  readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    return this.log.readStream(streamId, options);
  }

  /**
   * Reads the whole log after a cursor, gap-safe: an event shows up only once every
   * transaction that started before its own has ended, so none is ever skipped.
   */
  readAll(options: ReadAllOptions = {}): Promise<ReadAllPage> {
    return this.log.readLog(options, { gapSafe: true });
  }

  /**
   * Pages through the log after a cursor until it has caught up, one batch at a time,
   * so a replay never holds the whole log in memory.
   */
  readAllBatches(options: ReadAllOptions = {}): AsyncGenerator<ReadAllPage> {
    return this.log.readLogBatches(options);
  }

  /**
   * Follows the log from a cursor, page by page: catches up, then waits for new events.
   * The next page is read only when the caller asks for it, so memory stays at one page.
   * Ends when `signal` aborts.
   *
   * @example
   * for await (const page of ledger.follow({ after: '0:0', types: ['item.failed'] }, signal)) save(page.next);
   */
  async *follow(options: SubscribeOptions = {}, signal?: AbortSignal): AsyncGenerator<ReadAllPage> {
    const { batchSize = 1_000, pollIntervalMs = 1_000, after, ...filter } = options;
    const parsed = pacingSchema.safeParse({ batchSize, pollIntervalMs });
    if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, ''));
    const start = after === undefined ? logStart : parseLogCursor(after);
    // Validates the filter before anything is awaited.
    await this.readAll({ ...filter, after: start, limit: 1 });
    yield* followLog({
      after: start,
      batchSize,
      pollIntervalMs,
      readPage: (cursor, limit) => this.readAll({ ...filter, after: cursor, limit }),
      wakeUps: this.store.wakeUps,
      signal: signal ?? new AbortController().signal,
    });
  }

  /**
   * An Observable of recorded events after a cursor: it catches up in batches, then
   * follows live, woken by LISTEN/NOTIFY and polling as a fallback, so no event is ever
   * skipped. Unsubscribing stops the reads.
   *
   * @example
   * ledger.subscribe({ streamIds: [jobId] }).subscribe((event) => console.log(event.type));
   */
  subscribe(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return this.subscribePages(options).pipe(mergeMap((page) => page.events));
  }

  /** Like `subscribe`, a page of events at a time. */
  subscribePages(options: SubscribeOptions = {}): Observable<ReadAllPage> {
    return new Observable<ReadAllPage>((subscriber) => {
      const controller = new AbortController();
      void (async () => {
        for await (const page of this.follow(options, controller.signal)) {
          if (subscriber.closed) break;
          subscriber.next(page);
        }
        subscriber.complete();
      })().catch((error: unknown) => subscriber.error(error));
      return () => controller.abort();
    });
  }

  /**
   * A cursor that every committed event before now precedes: the events after it are
   * those of transactions still running at the call, and any later.
   */
  liveCursor(): Promise<LogCursor> {
    return this.log.liveCursor();
  }

  /**
   * A job's progress, live: the current snapshot first, then a new one after every change
   * (at most one per `throttleMs`).
   *
   * @example
   * ledger.watch(jobId, { throttleMs: 100 }).subscribe((progress) => render(progress.percent));
   */
  watch(jobId: string, options: WatchOptions = {}): Observable<JobProgressState> {
    return this.watchFold(jobId, jobProgress, options);
  }

  /** Any one-job projection, live, as `watch` does for progress. */
  watchFold<S>(
    jobId: string,
    projection: Projection<S>,
    options: WatchOptions = {},
  ): Observable<S> {
    const parsed = pacingSchema.safeParse(options);
    if (!parsed.success)
      return throwError(() => new InvalidInputError(toValidationIssues(parsed.error, '')));
    const { throttleMs = 0, pollIntervalMs } = parsed.data;
    const snapshots = defer(async () => {
      // Taken first: anything the fold below misses comes after this cursor.
      const after = await this.liveCursor();
      const accumulator = accumulatorFor(projection);
      for await (const events of this.log.readStreamPages(jobId)) {
        for (const event of events) accumulator.add(event);
      }
      return { after, accumulator };
    }).pipe(
      switchMap(({ after, accumulator }) =>
        this.subscribePages({
          after,
          streamIds: [jobId],
          ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }),
        }).pipe(
          map((page) => {
            // Events the first fold already saw come again; the projection skips them.
            for (const event of page.events) accumulator.add(event);
            return accumulator.result();
          }),
          startWith(accumulator.result()),
        ),
      ),
      distinctUntilChanged(),
    );
    return throttleMs > 0
      ? snapshots.pipe(throttleTime(throttleMs, asyncScheduler, { leading: true, trailing: true }))
      : snapshots;
  }

  /**
   * The overview of every job (or one project's), live: the list first, then again after
   * each change, at most one per `throttleMs` (default 250).
   */
  watchJobs(query: JobsQuery = {}, options: WatchOptions = {}): Observable<JobView[]> {
    const parsed = pacingSchema.safeParse(options);
    if (!parsed.success) {
      return throwError(() => new InvalidInputError(toValidationIssues(parsed.error, '')));
    }
    const { throttleMs = 250, pollIntervalMs } = parsed.data;
    return defer(() => this.liveCursor()).pipe(
      switchMap((after) =>
        this.subscribePages({
          after,
          ...(query.project === undefined ? {} : { projects: [query.project] }),
          ...(pollIntervalMs === undefined ? {} : { pollIntervalMs }),
        }).pipe(startWith(null)),
      ),
      throttleTime(throttleMs, asyncScheduler, { leading: true, trailing: true }),
      // Each query reads past the latest change; an older one still running is dropped.
      switchMap(() => this.jobs(query)),
    );
  }

  /** One project's jobs, live, as `watchJobs` gives them. */
  watchProject(project: string, query: Omit<JobsQuery, 'project'> = {}, options?: WatchOptions) {
    return this.watchJobs({ ...query, project }, options);
  }

  /** Every job, live, as `watchJobs` gives them. */
  watchAll(query: JobsQuery = {}, options?: WatchOptions): Observable<JobView[]> {
    return this.watchJobs(query, options);
  }

  /**
   * Where a job stands now, in constant time: its stored progress plus the events after
   * it, its ETA as of `now` (default: the clock), and its children rolled up. Null for an
   * unknown job.
   *
   * @example
   * const view = await ledger.status(jobId);
   * console.log(view?.progress.percent, view?.eta.etaMs);
   */
  status(jobId: string, now?: number): Promise<JobStatusView | null> {
    return this.views.status(jobId, now);
  }

  /**
   * A job's processed count over time (at most 128 points) and its ETA now, for charts.
   * Null for an unknown job.
   *
   * @example
   * const { points, eta } = (await ledger.throughput(jobId))!;
   */
  throughput(jobId: string): Promise<JobThroughput | null> {
    return this.views.throughput(jobId);
  }

  /** Jobs by project, kind, status or parent, or only the active ones; most recent first. */
  jobs(query: JobsQuery = {}): Promise<JobView[]> {
    return this.views.jobs(query);
  }

  /**
   * A page of `jobs` and the cursor of the next page (its `after`), null on the last page.
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
    return status === 'completed' || status === 'skipped';
  }

  /**
   * One item of a job: status, stage, attempts, type, group, worker, lease, duration and
   * last error. Throws `NotFoundError` for an unknown job or item.
   *
   * @example
   * const { status, stage, lastError } = await ledger.item(jobId, 'page-1');
   */
  async item(jobId: string, itemId: string): Promise<ItemEntry> {
    const state = await this.project(jobId, jobItems);
    if (state.version === 0) throw new NotFoundError(`Job '${jobId}'`);
    const record = itemRecord(state, itemId);
    if (!record) throw new NotFoundError(`Item '${itemId}' of job '${jobId}'`);
    return { itemId, ...record };
  }

  /**
   * Resumes a crashed job: releases the items whose lease expired (so their next attempt
   * counts as a retry), records `job.resumed`, and returns the last checkpoint and what
   * is left to do.
   *
   * @example
   * const { checkpoint, pending } = await ledger.resume(jobId, { leaseExpiredBefore: new Date() });
   */
  resume(jobId: string, options: ResumeOptions = {}): Promise<ResumePoint> {
    return resumeJob(this, jobId, options);
  }

  /**
   * Keeps the persisted projections current in the background until the returned stop is
   * called. Across processes one runner per projection works; the others wait.
   */
  runProjections(options: ProjectionRunnerOptions = {}): { stop(): Promise<void> } {
    const started: ProjectionRunner<unknown>[] = [];
    for (const definition of persistedProjections.values()) {
      if (this.runners.has(definition.name)) continue;
      const runner = new ProjectionRunner(this.runnerContext(), definition, options);
      this.runners.set(definition.name, runner);
      runner.start();
      started.push(runner);
    }
    return {
      stop: async () => {
        await Promise.all(started.map((runner) => runner.stop()));
        for (const runner of started) this.runners.delete(runner.definition.name);
      },
    };
  }

  /**
   * Folds what the persisted projections have not seen yet, here and now, unless a runner
   * elsewhere holds their lock (it keeps them current). Returns the ones it caught up.
   */
  async catchUpProjections(options: ProjectionRunnerOptions = {}): Promise<string[]> {
    const done: string[] = [];
    for (const definition of persistedProjections.values()) {
      if (this.runners.has(definition.name)) continue;
      const runner = new ProjectionRunner(this.runnerContext(), definition, options);
      if (await runner.catchUp()) done.push(definition.name);
    }
    return done;
  }

  /**
   * Rebuilds persisted projections (all, or the one named) from the log into a new
   * generation while the current one keeps serving, and switches when it has caught up.
   * Waits for the runner that holds the lock when it lives in another process.
   */
  async rebuild(name?: string, options: { timeoutMs?: number } = {}): Promise<Generation[]> {
    const definitions =
      name === undefined ? [...persistedProjections.values()] : [persistedProjection(name)];
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    const built: Generation[] = [];
    for (const definition of definitions) {
      const building = await startBuilding(this.db, definition.name, definition.version);
      const local = this.runners.get(definition.name);
      if (local) local.wake();
      else await new ProjectionRunner(this.runnerContext(), definition).catchUp();
      for (;;) {
        const rows = await readGenerations(this.db, definition.name);
        const active = rows.find((row) => row.status === 'active');
        if (active && active.generation >= building.generation) {
          built.push(active);
          break;
        }
        if (Date.now() > deadline) {
          throw new Error(`Projection '${definition.name}': the rebuild did not finish in time`);
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    return built;
  }

  /** Each persisted projection's generations, checkpoints and how far they trail the log. */
  async projectionStatus(): Promise<ProjectionStatus[]> {
    const generations = await readGenerations(this.db);
    const statuses: ProjectionStatus[] = [];
    for (const definition of persistedProjections.values()) {
      const rows = generations.filter((row) => row.projection === definition.name);
      if (rows.length === 0) {
        statuses.push({
          name: definition.name,
          codeVersion: definition.version,
          generation: null,
          lag: await this.log.countVisibleAfter(logStart),
        });
      }
      for (const row of rows) {
        statuses.push({
          name: definition.name,
          codeVersion: definition.version,
          generation: row,
          lag: await this.log.countVisibleAfter(row.cursor),
        });
      }
    }
    return statuses;
  }

  private runnerContext(): RunnerContext {
    return { store: this.store, readPage: (after, limit) => this.readAll({ after, limit }) };
  }

  /**
   * Folds one job's events through a projection. The last fold of recently read jobs is
   * kept, so reading a job again folds only what was appended since. The state is shared
   * with later reads: treat it as read-only.
   */
  async project<S>(jobId: string, projection: Projection<S>): Promise<S> {
    const cached = this.folds.get(projection, jobId);
    let accumulator: Accumulator<S> | null = null;
    let version = cached?.version ?? 0;
    for await (const events of this.log.readStreamPages(jobId, version + 1)) {
      if (events.length === 0) continue;
      // Made only when there is something to add: a job read again unchanged costs no copy.
      accumulator ??= accumulatorFor(projection, cached?.state);
      for (const event of events) accumulator.add(event);
      version = events.at(-1)?.version ?? version;
    }
    if (cached && version === cached.version) return cached.state;
    const state = accumulator ? accumulator.result() : projection.initial();
    if (version > 0) this.folds.set(projection, jobId, { state, version });
    return state;
  }

  /**
   * Streams the whole log (or what follows `after`) through a projection in batches,
   * with memory bounded by the batch size and the projection's own state.
   */
  async replay<S>(
    projection: Projection<S>,
    options: { after?: LogCursor | string; state?: S; batchSize?: number } = {},
  ): Promise<ReplayResult<S>> {
    const started = performance.now();
    const accumulator = accumulatorFor(projection, options.state ?? projection.initial());
    let cursor = options.after === undefined ? logStart : parseLogCursor(options.after);
    let count = 0;
    for await (const page of this.readAllBatches({
      after: cursor,
      ...(options.batchSize === undefined ? {} : { limit: options.batchSize }),
    })) {
      for (const event of page.events) accumulator.add(event);
      count += page.events.length;
      cursor = page.next;
    }
    const elapsedMs = performance.now() - started;
    return {
      state: accumulator.result(),
      cursor,
      events: count,
      elapsedMs,
      eventsPerSecond: elapsedMs > 0 ? (count * 1000) / elapsedMs : 0,
    };
  }

  /** One job's or all jobs' events, filtered and paged, for audits and screens. */
  timeline(query: TimelineQuery = {}): Promise<TimelinePage> {
    return queryTimeline(this.db, this.upcasters, query);
  }

  /** Jobs in the log, newest first, with their status. */
  listJobs(options: ListJobsOptions = {}): Promise<JobListing[]> {
    return listJobs(this.db, options);
  }

  /** The head version of a stream; 0 when it does not exist. */
  streamVersion(streamId: string): Promise<number> {
    return this.log.streamVersion(streamId);
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

  /** Stops the projection runners and closes the connections (and the PGlite folder lock). */
  async close(): Promise<void> {
    await Promise.all([...this.runners.values()].map((runner) => runner.stop()));
    this.runners.clear();
    await this.store.close();
  }
}

function persistedProjection(name: string) {
  const definition = persistedProjections.get(name);
  if (!definition) {
    throw new InvalidInputError([
      {
        path: 'projection',
        message: `expected one of ${[...persistedProjections.keys()].map((key) => JSON.stringify(key)).join(', ')}, received ${JSON.stringify(name)}`,
      },
    ]);
  }
  return definition;
}
