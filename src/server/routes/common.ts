import type { Projection } from '../../../projections/projection.ts';
import { NotFoundError } from '../../errors.ts';
import type { LedgerReads } from '../../ledger.ts';

/** What the routes of one job share: an unknown job is a 404, whatever the route. */

/** What a read found of a job, or 404 when it found none. */
export function found<T>(jobId: string, answer: T | null): T {
  if (answer === null) throw new NotFoundError(`Job '${jobId}'`);
  return answer;
}

/** The job's stream version, or 404. */
export async function requireJob(reads: LedgerReads, jobId: string): Promise<number> {
  return found(jobId, (await reads.streamVersion(jobId)) || null);
}

/** A known job folded through a projection; 404 for an unknown one. */
export async function projectJob<S>(
  reads: LedgerReads,
  jobId: string,
  projection: Projection<S>,
): Promise<S> {
  await requireJob(reads, jobId);
  return reads.project(jobId, projection);
}

/** The object without its undefined fields, as exact optional property types want it. */
export function defined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
