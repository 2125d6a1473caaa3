import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { getItem } from '../../projections/item-table.ts';
import { isDoneStatus, itemRecord, jobItems, type ItemEntry } from '../../projections/job-items.ts';
import { positionStatus } from '../../projections/job-stages.ts';
import { jobSummary, summarize, type SummaryFigures } from '../../projections/job-summary.ts';
import type { Projection } from '../../projections/projection.ts';
import { defaultConditionSettings } from '../../projections/job-conditions.ts';
import type { ConditionSettings } from '../../projections/job-conditions.ts';
import type { LogCursor } from '../cursors.ts';
import { readArchivedSummary } from '../retention/archived-jobs.ts';
import { NotFoundError } from '../errors.ts';
import type {
  LogReader,
  ReadAllOptions,
  ReadAllPage,
  ReadStreamOptions,
} from '../store/log-reads.ts';
import { FoldCache } from '../fold-cache.ts';
import { JobFolds, type ReplayResult } from './job-folds.ts';
import { JobViews } from './job-views.ts';
import type { JobViewsContext } from './job-state.ts';
import type { JobStatusView, JobThroughput, JobView, JobsQuery, StageMetric } from './job-views.ts';
import { queryTimeline, type TimelinePage, type TimelineQuery } from './timeline-query.ts';

/**
 * Every read a ledger answers: the log, folds and job views, over one database. A ledger
 * with a read replica has two: the replica's (its own methods) and the primary's
 * (`ledger.primary`), for reads that must see the latest append (docs/architecture.md,
 * "Read replicas").
 */
export class LedgerReads {
  protected readonly log: LogReader;
  private readonly folds: JobFolds;
  private readonly views: JobViews;

  constructor(
    log: LogReader,
    /** The projection runner's state of a job, when this process runs it. */
    cachedState: JobViewsContext['cachedState'],
    foldCacheJobs = 32,
    /** How conditions are judged where a job sets none. */
    readonly conditionSettings: ConditionSettings = defaultConditionSettings,
  ) {
    this.log = log;
    // `project` and status reads keep their latest folds in one cache: a job's status read
    // and its `project(jobId, jobEta)` go on from each other's folds.
    const folds = new FoldCache(foldCacheJobs);
    this.folds = new JobFolds(log, folds);
    this.views = new JobViews({ log, cachedState, conditionSettings, readFolds: folds });
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
   * A job's summary figures (counts, durations, failures by category); for a job retention
   * archived, the figures kept when its events went. Null for an unknown job.
   */
  async summary(jobId: string): Promise<SummaryFigures | null> {
    const archived = await readArchivedSummary(this.log.db, jobId);
    if (archived) return archived;
    if ((await this.log.streamVersion(jobId)) === 0) return null;
    return summarize(await this.folds.project(jobId, jobSummary));
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
}
