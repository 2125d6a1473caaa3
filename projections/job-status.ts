/**
 * A job's status, the one list of them, and the predicates every reader shares: the job
 * lists, the CLI, the HTTP API and the dashboard all ask these and nothing else.
 */

/** Every status a job can be in, in lifecycle order. */
export const jobStatuses = [
  'pending',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
] as const;

/** Where a job is in its lifecycle. */
export type JobStatus = (typeof jobStatuses)[number];

/** The statuses of a job that has not ended. */
export const unfinishedStatuses: readonly JobStatus[] = ['pending', 'running', 'paused'];

/** The statuses of a job that has ended. */
export type FinishedStatus = 'completed' | 'failed' | 'cancelled';

/** True once a job completed, failed or was cancelled. */
export function isFinished(status: JobStatus): status is FinishedStatus {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** How long a finished job stays in the active view by default: 10 minutes. */
export const defaultFinishedVisibleMs = 10 * 60_000;

/**
 * True for a job the active view shows at `now`: not finished, or finished within
 * `visibleMs`.
 *
 * @example
 * isActive({ status: 'completed', endedAt: now - 1_000 }, now, 60_000); // true
 */
export function isActive(
  job: { status: JobStatus; endedAt: number | null },
  now: number,
  visibleMs = defaultFinishedVisibleMs,
): boolean {
  if (!isFinished(job.status)) return true;
  return job.endedAt !== null && now - job.endedAt <= visibleMs;
}
