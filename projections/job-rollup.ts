import type { EtaEstimate } from './job-eta.ts';
import type { JobProgressState, JobStatus } from './job-progress.ts';
import { isFinished } from './job-status.ts';

/** A job's progress without its per-item table. */
export type JobSnapshot = Omit<JobProgressState, 'items'>;

/** A job as lists show it: its progress and its ETA as of the query. */
export interface JobView {
  jobId: string;
  progress: JobSnapshot;
  eta: EtaEstimate;
}

/** The children of a job started with `parentJobId`, rolled up. */
export interface JobRollUp {
  count: number;
  byStatus: Partial<Record<JobStatus, number>>;
  processed: number;
  /** The sum of the children's totals; null while any is unknown. */
  total: number | null;
  /**
   * processed / total when every total is known, else the mean of the children's percents;
   * 100 only once every child has ended.
   */
  percent: number;
  /** When the last unfinished child is expected to finish; null when any cannot tell. */
  eta: { etaMs: number | null; range: { lowMs: number; highMs: number } | null };
  children: JobView[];
}

/**
 * Rolls a job's children up: counts by status, summed figures, and the ETA of the slowest
 * unfinished child, since children run side by side.
 *
 * @example
 * const { percent, eta } = rollUp(childViews);
 */
export function rollUp(children: JobView[]): JobRollUp {
  const byStatus: JobRollUp['byStatus'] = {};
  let processed = 0;
  let total: number | null = 0;
  let percentSum = 0;
  let etaMs: number | null = 0;
  let range: { lowMs: number; highMs: number } | null = { lowMs: 0, highMs: 0 };
  let running = 0;
  for (const { progress, eta } of children) {
    byStatus[progress.status] = (byStatus[progress.status] ?? 0) + 1;
    processed += progress.processed;
    total = total === null || progress.total === null ? null : total + progress.total;
    percentSum += progress.percent;
    if (isFinished(progress.status)) continue;
    running += 1;
    etaMs = etaMs === null || eta.etaMs === null ? null : Math.max(etaMs, eta.etaMs);
    range =
      range === null || eta.range === null
        ? null
        : {
            lowMs: Math.max(range.lowMs, eta.range.lowMs),
            highMs: Math.max(range.highMs, eta.range.highMs),
          };
  }
  const fraction =
    total !== null && total > 0
      ? Math.min(100, (processed / total) * 100)
      : children.length > 0
        ? percentSum / children.length
        : 0;
  // 100 means finished: while a child runs, the parent stops just short of it.
  const percent = running > 0 && fraction >= 100 ? 99.99 : fraction;
  return {
    count: children.length,
    byStatus,
    processed,
    total,
    percent,
    eta: { etaMs, range: etaMs === null ? null : range },
    children,
  };
}
