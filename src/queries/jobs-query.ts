import * as z from 'zod';
import { conditionNames, storableText } from '../../schema/events.ts';
import type { ConditionName } from '../../schema/events.ts';
import { conditionFields } from '../../projections/job-conditions.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import { limits } from '../../schema/limits.ts';
import type { JobSnapshot } from '../../projections/job-rollup.ts';
import { defaultFinishedVisibleMs, isActive, jobStatuses } from '../../projections/job-status.ts';
import type { JobStatus } from '../../projections/job-status.ts';
import { jobsPageCursorSchema, parseJobsPageCursor } from '../cursors.ts';
import type { JobsPageCursor } from '../cursors.ts';
import { parseInput } from '../validation.ts';

/** Filters of `jobs`. */
export interface JobsQuery {
  project?: string;
  kind?: string;
  status?: readonly JobStatus[];
  /** Only running, paused and pending jobs, and those that ended within `finishedVisibleMs`. */
  active?: boolean;
  /** How long a finished job stays in the active view (default 10 minutes). */
  finishedVisibleMs?: number;
  parentJobId?: string;
  /** Only this job: a list of it, or empty when the other filters leave it out. */
  jobId?: string;
  /** Case-insensitive text in the job's id, name, kind or project. */
  text?: string;
  /** At most this many, most recently updated first (default 100, maximum 10,000). */
  limit?: number;
  /** The clock for `active` and ETAs (default now). */
  now?: number;
  /** Continue after this job of a previous page (a jobs page cursor, see `formatJobsPageCursor`). */
  after?: string;
  /** Only jobs in at least one of these conditions as of `now` (docs/alerts.md). */
  condition?: readonly ConditionName[];
  /** Only stalled jobs (true) or only jobs that are not stalled (false). */
  stalled?: boolean;
}

/** `JobsQuery` as its callers may send it. */
export const jobsQuerySchema = z.strictObject({
  project: storableText(limits.nameLength).optional(),
  kind: storableText(limits.nameLength).optional(),
  status: z.array(z.enum(jobStatuses)).max(jobStatuses.length).optional(),
  active: z.boolean().optional(),
  finishedVisibleMs: z.number().int().min(0).optional(),
  parentJobId: storableText(limits.idLength).optional(),
  jobId: storableText(limits.idLength).optional(),
  text: storableText(200).optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
  now: z.number().finite().optional(),
  after: jobsPageCursorSchema(limits.idLength).optional(),
  condition: z.array(z.enum(conditionNames)).min(1).max(conditionNames.length).optional(),
  stalled: z.boolean().optional(),
});

/** A checked `JobsQuery`, with its defaults filled in and its cursor read. */
export interface JobsFilter extends Omit<z.output<typeof jobsQuerySchema>, 'after'> {
  limit: number;
  now: number;
  finishedVisibleMs: number;
  after: JobsPageCursor | null;
}

/** Checks a `JobsQuery`; throws `InvalidInputError` naming every bad field. */
export function parseJobsQuery(query: JobsQuery): JobsFilter {
  const parsed = parseInput(jobsQuerySchema, query);
  return {
    ...parsed,
    limit: parsed.limit ?? 100,
    now: parsed.now ?? Date.now(),
    finishedVisibleMs: parsed.finishedVisibleMs ?? defaultFinishedVisibleMs,
    after: parsed.after === undefined ? null : parseJobsPageCursor(parsed.after),
  };
}

/** The conditions a filter asks for, `stalled: true` included; null when it asks for none. */
export function wantedConditions(filter: JobsFilter): ConditionName[] | null {
  const wanted = new Set(filter.condition ?? []);
  if (filter.stalled === true) wanted.add('stalled');
  return wanted.size === 0 ? null : [...wanted];
}

/** True when the job's conditions pass the filter's `condition` and `stalled`. */
export function matchesConditions(conditions: JobConditions, filter: JobsFilter): boolean {
  if (filter.stalled === false && conditions.stalled) return false;
  if (filter.stalled === true && !conditions.stalled) return false;
  const wanted = filter.condition;
  return !wanted || wanted.some((name) => conditions[conditionFields[name]] !== null);
}

/** True when the job passes every filter, its page cursor included. */
export function matchesJobsQuery(
  jobId: string,
  progress: JobSnapshot,
  filter: JobsFilter,
): boolean {
  if (progress.version === 0) return false;
  if (filter.jobId !== undefined && jobId !== filter.jobId) return false;
  if (filter.project !== undefined && progress.project !== filter.project) return false;
  if (filter.kind !== undefined && progress.kind !== filter.kind) return false;
  if (filter.parentJobId !== undefined && progress.parentJobId !== filter.parentJobId) return false;
  if (filter.status && !filter.status.includes(progress.status)) return false;
  if (filter.active && !isActive(progress, filter.now, filter.finishedVisibleMs)) return false;
  if (filter.text !== undefined && !mentions(jobId, progress, filter.text)) return false;
  // Newest first, then by id: a page goes on below its cursor.
  if (filter.after) {
    const updatedAt = progress.updatedAt ?? 0;
    const { updatedAt: afterTime, jobId: afterId } = filter.after;
    if (updatedAt > afterTime || (updatedAt === afterTime && jobId <= afterId)) return false;
  }
  return true;
}

/** True when the text is in the job's id, name, kind or project, whatever the case. */
function mentions(jobId: string, progress: JobSnapshot, text: string): boolean {
  const searched = [jobId, progress.name, progress.kind, progress.project].join(' ');
  return searched.toLowerCase().includes(text.toLowerCase());
}
