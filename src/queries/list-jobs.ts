import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { InvalidInputError } from '../errors.ts';

/** A job as the job list shows it. */
export interface JobListing {
  jobId: string;
  name: string | null;
  kind: string | null;
  project: string | null;
  status: 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';
  /** The stream's head version: how many events the job has. */
  events: number;
  startedAt: Date | null;
  updatedAt: Date;
}

/** Options of `listJobs`. */
export interface ListJobsOptions {
  project?: string;
  /** At most this many jobs (default 100, maximum 10,000). */
  limit?: number;
}

const lifecycleTypes = [
  'job.paused',
  'job.resumed',
  'job.completed',
  'job.failed',
  'job.cancelled',
] as const;

const statusOf: Record<(typeof lifecycleTypes)[number], JobListing['status']> = {
  'job.paused': 'paused',
  'job.resumed': 'running',
  'job.completed': 'completed',
  'job.failed': 'failed',
  'job.cancelled': 'cancelled',
};

/** Lists jobs newest first: their `job.started` facts and their latest lifecycle event. */
export async function listJobs(
  db: Kysely<Database>,
  options: ListJobsOptions,
): Promise<JobListing[]> {
  const limit = options.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
    throw new InvalidInputError([
      { path: 'limit', message: `expected 1 to 10000, received ${JSON.stringify(limit)}` },
    ]);
  }
  let query = db
    .selectFrom('streams as s')
    .leftJoin('events as started', (join) =>
      join
        .onRef('started.stream_id', '=', 's.stream_id')
        .on('started.version', '=', 1 as never)
        .on('started.type', '=', 'job.started'),
    )
    .select((eb) => [
      's.stream_id',
      's.version',
      's.updated_at',
      'started.data',
      'started.occurred_at',
      eb
        .selectFrom('events as e')
        .select('e.type')
        .whereRef('e.stream_id', '=', 's.stream_id')
        .where('e.type', 'in', lifecycleTypes)
        .orderBy('e.version', 'desc')
        .limit(1)
        .as('lifecycle'),
    ])
    .where('s.version', '>', 0 as never);
  if (options.project !== undefined) {
    query = query.where(sql<boolean>`started.data->>'project' = ${options.project}`);
  }
  const rows = await query
    .orderBy('s.created_at', 'desc')
    .orderBy('s.stream_id')
    .limit(limit)
    .execute();
  return rows.map((row) => {
    const started = row.data as { name?: string; kind?: string; project?: string } | null;
    const lifecycle = row.lifecycle as (typeof lifecycleTypes)[number] | null;
    return {
      jobId: row.stream_id,
      name: started?.name ?? null,
      kind: started?.kind ?? null,
      project: started?.project ?? null,
      status: lifecycle ? statusOf[lifecycle] : started ? 'running' : 'pending',
      events: Number(row.version),
      startedAt: row.occurred_at ?? null,
      updatedAt: row.updated_at,
    };
  });
}
