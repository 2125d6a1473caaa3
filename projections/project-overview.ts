import { isCustomEvent } from '../schema/recorded-event.ts';
import type { JobProgressState } from './job-progress.ts';
import type { JobStatus } from './job-status.ts';
import type { Projection } from './projection.ts';
import { own } from './own.ts';

/**
 * The project overview, in one place:
 * - `projectOverviewOf(snapshots)`: per project, its jobs counted by status and their
 *   progress summed. `ledger.projectOverview` and `GET /v1/projects/:project/progress`
 *   answer this, from the stored job states.
 * - `jobOverviews`, a reducer over the whole log: each job's record (`JobOverview`), and
 *   `projectSummaries` of it, per project its jobs listed and counted. `jobOverviewOf` gives
 *   the same record from a job's progress, so both group through one counting code
 *   (`groupByProject`).
 * The two differ in what an item count means: the overview counts items by their latest
 * status (`progress.counts`); a job's record counts item results recorded, so a retried
 * item counts once per result.
 */

/** A job as `jobOverviews` records it. Counts are item results recorded (a retry counts again). */
export interface JobOverview {
  jobId: string;
  version: number;
  name: string | null;
  kind: string | null;
  project: string | null;
  status: JobStatus;
  total: number | null;
  completed: number;
  failed: number;
  skipped: number;
  startedAt: number | null;
  endedAt: number | null;
}

/** Every job in the log, by id. */
export interface JobOverviewsState {
  jobs: Record<string, JobOverview>;
}

const blankJob = (jobId: string): JobOverview => ({
  jobId,
  version: 0,
  name: null,
  kind: null,
  project: null,
  status: 'pending',
  total: null,
  completed: 0,
  failed: 0,
  skipped: 0,
  startedAt: null,
  endedAt: null,
});

/** Every job's record across the whole log, for per-project views (`projectSummaries`). */
export const jobOverviews: Projection<JobOverviewsState> = {
  name: 'project-overview',
  version: 1,
  initial: () => ({ jobs: {} }),
  evolve(state, event) {
    const previous = own(state.jobs, event.streamId) ?? blankJob(event.streamId);
    if (event.version <= previous.version) return state;
    const job: JobOverview = { ...previous, version: event.version };
    const at = event.occurredAt.getTime();
    if (!isCustomEvent(event)) {
      switch (event.type) {
        case 'job.started':
          Object.assign(job, {
            name: event.data.name,
            kind: event.data.kind,
            project: event.data.project,
            status: 'running',
            startedAt: at,
            total: event.data.total ?? job.total,
          });
          break;
        case 'job.scope_changed':
          job.total = event.data.total;
          break;
        case 'progress.reported':
          job.total = event.data.total ?? job.total;
          break;
        case 'item.completed':
          job.completed += 1;
          break;
        case 'item.failed':
          job.failed += 1;
          break;
        case 'item.skipped':
          job.skipped += 1;
          break;
        case 'job.paused':
          job.status = 'paused';
          break;
        case 'job.resumed':
          job.status = 'running';
          break;
        case 'job.completed':
        case 'job.failed':
        case 'job.cancelled':
          job.status =
            event.type === 'job.completed'
              ? 'completed'
              : event.type === 'job.failed'
                ? 'failed'
                : 'cancelled';
          job.endedAt = at;
          break;
        case 'items.planned':
        case 'stage.started':
        case 'item.started':
        case 'items.released':
        case 'checkpoint.saved':
        case 'log.written':
        case 'condition.raised':
        case 'condition.cleared':
          break;
      }
    }
    return { jobs: { ...state.jobs, [event.streamId]: job } };
  },
};

/**
 * A job's record as `jobOverviews` folds it, from the job's progress: its declared total,
 * and its item results recorded (by type, so a retry counts again).
 */
export function jobOverviewOf(progress: Omit<JobProgressState, 'items'>): JobOverview {
  let completed = 0;
  let failed = 0;
  let skipped = 0;
  for (const outcomes of Object.values(progress.byType)) {
    completed += outcomes.completed;
    failed += outcomes.failed;
    skipped += outcomes.skipped;
  }
  return {
    jobId: progress.jobId ?? '',
    version: progress.version,
    name: progress.name,
    kind: progress.kind,
    project: progress.project,
    status: progress.status,
    total: progress.declaredTotal,
    completed,
    failed,
    skipped,
    startedAt: progress.startedAt,
    endedAt: progress.endedAt,
  };
}

/** One project's jobs counted: what `ledger.projectOverview` gives per project. */
export interface ProjectTotals {
  project: string;
  jobs: number;
  byStatus: Partial<Record<JobStatus, number>>;
  processed: number;
  completed: number;
  failed: number;
  skipped: number;
}

/** What the overview counts of one job. */
export interface JobTally {
  project: string | null;
  status: JobStatus;
  processed: number;
  completed: number;
  failed: number;
  skipped: number;
}

/** The project of jobs that name none. */
const noProject = '(none)';

/**
 * Jobs grouped by project, sorted by project name: each group's jobs in the order given,
 * counted by status, with their tallies summed. The one counting code of the overview.
 */
export function groupByProject<J>(
  jobs: Iterable<J>,
  tallyOf: (job: J) => JobTally,
): { totals: ProjectTotals; jobs: J[] }[] {
  const byProject = new Map<string, { totals: ProjectTotals; jobs: J[] }>();
  for (const job of jobs) {
    const tally = tallyOf(job);
    const project = tally.project ?? noProject;
    let group = byProject.get(project);
    if (!group) {
      const totals = {
        project,
        jobs: 0,
        byStatus: {},
        processed: 0,
        completed: 0,
        failed: 0,
        skipped: 0,
      };
      byProject.set(project, (group = { totals, jobs: [] }));
    }
    const { totals } = group;
    group.jobs.push(job);
    totals.jobs += 1;
    totals.byStatus[tally.status] = (totals.byStatus[tally.status] ?? 0) + 1;
    totals.processed += tally.processed;
    totals.completed += tally.completed;
    totals.failed += tally.failed;
    totals.skipped += tally.skipped;
  }
  return [...byProject.values()].sort((a, b) => a.totals.project.localeCompare(b.totals.project));
}

/**
 * Per project, its jobs counted by status and their progress summed (items by their
 * latest status), sorted by project.
 *
 * @example
 * const overview = projectOverviewOf(jobs.map((job) => job.progress));
 */
export function projectOverviewOf(
  progresses: Iterable<Omit<JobProgressState, 'items'>>,
): ProjectTotals[] {
  const groups = groupByProject(progresses, (progress) => ({
    project: progress.project,
    status: progress.status,
    processed: progress.processed,
    completed: progress.counts.completed,
    failed: progress.counts.failed,
    skipped: progress.counts.skipped,
  }));
  return groups.map((group) => group.totals);
}

/** One project's jobs and totals. */
export interface ProjectSummary {
  project: string;
  jobs: JobOverview[];
  byStatus: Partial<Record<JobStatus, number>>;
  completed: number;
  failed: number;
  skipped: number;
}

/** Jobs grouped by project, newest first within each. */
export function projectSummaries(state: JobOverviewsState): ProjectSummary[] {
  const groups = groupByProject(Object.values(state.jobs), (job) => ({
    ...job,
    processed: job.completed + job.failed + job.skipped,
  }));
  return groups.map(({ totals, jobs }) => ({
    project: totals.project,
    jobs: jobs.sort(
      (a, b) => (b.startedAt ?? 0) - (a.startedAt ?? 0) || a.jobId.localeCompare(b.jobId),
    ),
    byStatus: totals.byStatus,
    completed: totals.completed,
    failed: totals.failed,
    skipped: totals.skipped,
  }));
}
