import type { JobEtaState } from '../../projections/job-eta.ts';
import { projectOverviewOf } from '../../projections/project-overview.ts';
import type { ProjectTotals } from '../../projections/project-overview.ts';
import { stageMetricsOf } from '../../projections/stage-metrics.ts';
import type { StageFigures } from '../../projections/stage-metrics.ts';
import { selectJobs, selectJobsPage } from './job-list.ts';
import type { JobView } from './job-list.ts';
import { readJobState } from './job-state.ts';
import type { JobViewsContext } from './job-state.ts';
import { readJobStatus, readJobThroughput, StageRates } from './job-status.ts';
import type { JobStatusView, JobThroughput } from './job-status.ts';
import { parseJobsQuery } from './jobs-query.ts';
import type { JobsQuery } from './jobs-query.ts';

export type { JobRollUp, JobSnapshot } from '../../projections/job-rollup.ts';
export type { ArchivedMarker } from '../retention/archived-jobs.ts';
export type { JobView } from './job-list.ts';
export type { JobStatusView, JobThroughput } from './job-status.ts';
export type { JobViewsContext } from './job-state.ts';
export type { JobsQuery } from './jobs-query.ts';

/** Figures of one stage name within one job kind, across jobs. */
export type StageMetric = StageFigures;

/** One project's jobs counted (see `projectOverviewOf`). */
export type ProjectView = ProjectTotals;

/**
 * Queries over the persisted `jobs` projection. Each answer is the stored state plus the
 * log past it, so it is never older than the last append the caller saw; without a
 * current generation (before the first catch-up, or while code changes rebuild it) the
 * answer is folded from the log alone. One job: job-state.ts; lists: job-list.ts; status
 * and throughput: job-status.ts; the aggregates are pure, in projections/.
 */
export class JobViews {
  /** Stage rates by kind for status reads, from this view's own stage metrics. */
  private readonly stageRates = new StageRates((kind) => this.stageMetrics({ kind }));

  constructor(private readonly context: JobViewsContext) {}

  /**
   * One job's state: stored, plus the events of its stream after it; null if unknown.
   * Its item table holds only `itemIds` and the items the tail touches.
   */
  async jobState(jobId: string, itemIds: readonly string[] = []): Promise<JobEtaState | null> {
    return (await readJobState(this.context, jobId, itemIds, false)).state;
  }

  /** A job's progress, ETA and roll-up of its children; null for an unknown job. */
  status(jobId: string, now = Date.now()): Promise<JobStatusView | null> {
    return readJobStatus(this.context, this.stageRates, jobId, now);
  }

  /** A job's processed count over time and its ETA as of `now`; null for an unknown job. */
  throughput(jobId: string, now = Date.now()): Promise<JobThroughput | null> {
    return readJobThroughput(this.context, jobId, now);
  }

  /** Jobs matching the filters, most recently updated first. */
  async jobs(query: JobsQuery = {}): Promise<JobView[]> {
    const filter = parseJobsQuery(query);
    return selectJobs(this.context, filter, filter.limit);
  }

  /**
   * A page of `jobs` and the cursor of the next one, null when this is the last.
   *
   * @example
   * const { jobs, nextCursor } = await views.jobsPage({ limit: 50 });
   */
  async jobsPage(query: JobsQuery = {}): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    return selectJobsPage(this.context, parseJobsQuery(query));
  }

  /** Every project's jobs counted, optionally only active jobs (or only the one `jobId`). */
  async projects(
    query: Pick<JobsQuery, 'active' | 'finishedVisibleMs' | 'now' | 'jobId'> = {},
  ): Promise<ProjectView[]> {
    const jobs = await this.jobs({ ...query, limit: 10_000 });
    return projectOverviewOf(jobs.map((job) => job.progress));
  }

  /** Count, mean and p95 duration and throughput of each stage name, per job kind. */
  async stageMetrics(query: Pick<JobsQuery, 'project' | 'kind'> = {}): Promise<StageMetric[]> {
    const jobs = await this.jobs({ ...query, limit: 10_000 });
    return stageMetricsOf(jobs.map((job) => job.progress));
  }
}
