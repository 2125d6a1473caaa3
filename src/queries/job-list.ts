import { estimateEta } from '../../projections/job-eta.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import type { JobView as FoldedJobView } from '../../projections/job-rollup.ts';
import { unfinishedStatuses } from '../../projections/job-status.ts';
import { formatJobsPageCursor } from '../cursors.ts';
import { readCurrentJobsGeneration } from '../persisted/stored-jobs.ts';
import type { JobViewsContext } from './job-state.ts';
import { childrenQuery } from './job-state.ts';
import { readStatesOf, snapshotOf, tailAndStoredStates } from './job-states.ts';
import { readArchivedJobs, selectArchivedJobs } from '../retention/archived-jobs.ts';
import type { ArchivedJob, ArchivedMarker } from '../retention/archived-jobs.ts';
import { jobConditions, noConditions } from '../../projections/job-conditions.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import { matchesConditions, matchesJobsQuery, wantedConditions } from './jobs-query.ts';
import type { JobsFilter } from './jobs-query.ts';

/**
 * A job as lists show it, with its conditions as of the list's `now`; `archived` is there
 * when retention archived it (its view is frozen).
 */
export type JobView = FoldedJobView & { conditions: JobConditions; archived?: ArchivedMarker };

/** Jobs matching the filters, most recently updated first, at most `limit`. */
export async function selectJobs(
  context: JobViewsContext,
  filter: JobsFilter,
  limit: number,
): Promise<JobView[]> {
  const states = await candidateStates(context, filter, limit);
  // Archived jobs are finished: in no condition, so a condition filter leaves them all out.
  const archived =
    wantedConditions(filter) === null
      ? await archivedCandidates(context, filter, limit, [...states.keys()])
      : new Map<string, ArchivedJob>();
  const views: JobView[] = [];
  for (const [jobId, state] of states) {
    if (archived.has(jobId) || !matchesJobsQuery(jobId, state.progress, filter)) continue;
    const view = toView(jobId, state, filter.now);
    const conditions = jobConditions(
      state.progress,
      view.eta,
      filter.now,
      context.conditionSettings,
    );
    if (matchesConditions(conditions, filter)) views.push({ ...view, conditions });
  }
  for (const [jobId, { view, archived: marker }] of archived) {
    // Archived jobs are finished: no condition holds.
    if (matchesJobsQuery(jobId, view.progress, filter) && matchesConditions(noConditions, filter)) {
      const { progress, eta } = view;
      views.push({ jobId, progress, eta, conditions: noConditions, archived: marker });
    }
  }
  return sortByUpdate(views).slice(0, limit);
}

/**
 * Archived jobs that may match: those among `known` (the stored projection may still hold
 * them, without saying they are archived) and those of `archived_jobs` the filter selects.
 */
async function archivedCandidates(
  context: JobViewsContext,
  filter: JobsFilter,
  limit: number,
  known: readonly string[],
): Promise<Map<string, ArchivedJob>> {
  const { db } = context.log;
  if (filter.jobId !== undefined) return readArchivedJobs(db, [filter.jobId]);
  const found = await readArchivedJobs(db, known);
  const selected = await selectArchivedJobs(db, {
    limit,
    ...(filter.project === undefined ? {} : { project: filter.project }),
    ...(filter.kind === undefined ? {} : { kind: filter.kind }),
    ...(filter.status ? { statuses: filter.status } : {}),
    ...(filter.parentJobId === undefined ? {} : { parentJobId: filter.parentJobId }),
    ...(filter.text === undefined ? {} : { text: filter.text }),
    ...(filter.after ? { after: filter.after } : {}),
  });
  for (const job of selected) found.set(job.view.jobId, job);
  return found;
}

/**
 * A page of jobs and the cursor of the next one, null when this is the last.
 *
 * @example
 * const { jobs, nextCursor } = await selectJobsPage(context, parseJobsQuery({ limit: 50 }));
 */
export async function selectJobsPage(
  context: JobViewsContext,
  filter: JobsFilter,
): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
  const { limit } = filter;
  // One more than the page tells whether another page follows.
  const jobs = await selectJobs(context, filter, limit + 1);
  const page = jobs.slice(0, limit);
  return {
    jobs: page,
    nextCursor: jobs.length > limit ? formatJobsPageCursor(page.at(-1)!) : null,
  };
}

/**
 * Stored states that may match, plus every job the log past the checkpoint touches,
 * folded up to date. The SQL filters are a first cut; `selectJobs` filters again after
 * the fold.
 */
async function candidateStates(
  context: JobViewsContext,
  filter: JobsFilter,
  limit: number,
): Promise<Map<string, JobEtaState>> {
  const { db } = context.log;
  const generation = await readCurrentJobsGeneration(db);
  if (filter.jobId !== undefined) return readStatesOf(context, [filter.jobId], generation);
  if (filter.parentJobId !== undefined) {
    const children = await childrenQuery(db, filter.parentJobId).execute();
    const childIds = children.map((row) => row.stream_id);
    return readStatesOf(context, childIds, generation);
  }
  const wanted = wantedConditions(filter);
  return tailAndStoredStates(context, generation, ({ except, exclusive }) => ({
    // The SQL filter may cut at the limit only when it drops nothing the fold would keep:
    // conditions are judged after the fold (SQL narrows to jobs that may hold them, and
    // cannot tell which do not), so with any condition filter every candidate is read.
    ...(exclusive && wanted === null && filter.stalled === undefined ? { ...except, limit } : {}),
    ...(filter.project === undefined ? {} : { project: filter.project }),
    ...(filter.kind === undefined ? {} : { kind: filter.kind }),
    ...(filter.status ? { statuses: filter.status } : {}),
    ...(filter.text === undefined ? {} : { text: filter.text }),
    ...(filter.after ? { after: filter.after } : {}),
    ...(wanted
      ? {
          mayHold: { conditions: wanted, now: filter.now, settings: context.conditionSettings },
        }
      : {}),
    ...(filter.active
      ? {
          activeSince: {
            statuses: unfinishedStatuses,
            endedSince: filter.now - filter.finishedVisibleMs,
          },
        }
      : {}),
  }));
}

/** Most recently updated first, then by id. */
export function sortByUpdate<V extends FoldedJobView>(views: V[]): V[] {
  return views.sort(
    (a, b) =>
      (b.progress.updatedAt ?? 0) - (a.progress.updatedAt ?? 0) ||
      (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0),
  );
}

/** A job as lists show it: its progress without items, and its ETA at `now`. */
export function toView(jobId: string, state: JobEtaState, now: number): FoldedJobView {
  return { jobId, progress: snapshotOf(state), eta: estimateEta(state, now) };
}
