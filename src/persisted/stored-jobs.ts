import { sql } from 'kysely';
import type { RawBuilder, Selectable } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import type { JobsPageCursor } from '../cursors.ts';
import { escapeLike } from '../store/escape-like.ts';
import type { ConditionName } from '../../schema/events.ts';
import type { ConditionSettings } from '../../projections/job-conditions.ts';
import { unfinishedStatuses } from '../../projections/job-status.ts';
import { jobsProjection, mainPart } from './persisted-projection.ts';
import { readGenerations, toGeneration } from './projection-tables.ts';
import type { Db, Generation } from './projection-tables.ts';

// The stored states of the `jobs` projection, as the job views read them. With
// projection-tables.ts, the only SQL over `projection_checkpoints` and `projection_states`.

/** The active generation of `jobs` written by the current code, if any. */
export async function readCurrentJobsGeneration(db: Db): Promise<Generation | null> {
  const rows = await readGenerations(db, jobsProjection.name);
  const { version } = jobsProjection;
  return rows.find((row) => row.status === 'active' && row.codeVersion === version) ?? null;
}

/**
 * In one round trip: the current generation of `jobs`, the main part of `jobId`'s state in
 * it, and the caller's `columns` (over `events`, say), given the stored state's version
 * (0 when none is stored).
 */
export async function readJobHead<C extends object>(
  db: Db,
  jobId: string,
  columns: (storedVersion: RawBuilder<number>) => RawBuilder<unknown>,
): Promise<{ generation: Generation | null; main: JobEtaState | null; columns: C }> {
  const storedVersion = sql<number>`coalesce((s.value -> 'progress' ->> 'version')::int, 0)`;
  const { rows } = await sql<
    Partial<Selectable<Database['projection_checkpoints']>> & { value: JobEtaState | null }
  >`
    select c.*, s.value, ${columns(storedVersion)}
      from (select 1) as one
      left join projection_checkpoints c
        on c.projection = ${jobsProjection.name} and c.status = 'active'
       and c.code_version = ${jobsProjection.version}
      left join projection_states s
        on s.projection = c.projection and s.generation = c.generation
       and s.key = ${jobId} and s.part = ${mainPart}`.execute(db);
  const { value, ...rest } = rows[0]!;
  const generation =
    rest.generation == null
      ? null
      : toGeneration(rest as Selectable<Database['projection_checkpoints']>);
  return { generation, main: value, columns: rest as C };
}

/** A job's main part as stored: its state without items. */
export interface StoredJob {
  key: string;
  value: JobEtaState;
}

/** The main parts of these jobs' states in a generation of `jobs`. */
export async function readStoredJobs(
  db: Db,
  generation: Generation,
  jobIds: readonly string[],
): Promise<StoredJob[]> {
  if (jobIds.length === 0) return [];
  const rows = await mainParts(db, generation).where('key', 'in', jobIds).execute();
  return rows as StoredJob[];
}

/** What `selectStoredJobs` filters on: a first cut, which the caller filters again. */
export interface StoredJobsFilter {
  /** Jobs left out (those the caller has from elsewhere). */
  except?: readonly string[];
  project?: string;
  kind?: string;
  statuses?: readonly string[];
  /** Case-insensitive text in the id, name, kind or project. */
  text?: string;
  /** Only jobs after this one, newest first. */
  after?: JobsPageCursor;
  /** Only jobs in one of these statuses or ended at or after `endedSince`. */
  activeSince?: { statuses: readonly string[]; endedSince: number };
  /** At most this many, newest first; all when absent. */
  limit?: number;
  /** Only unfinished jobs that may hold one of these conditions as of `now` (a superset). */
  mayHold?: { conditions: readonly ConditionName[]; now: number; settings: ConditionSettings };
  /** With `mayHold`: also jobs the log records a raised condition of. */
  orRaised?: boolean;
}

/** Stored jobs of a generation of `jobs`, newest first, then by id in byte order. */
export async function selectStoredJobs(
  db: Db,
  generation: Generation,
  filter: StoredJobsFilter,
): Promise<StoredJob[]> {
  const field = (name: string) => sql<string>`value -> 'progress' ->> ${name}`;
  let query = mainParts(db, generation);
  if (filter.except && filter.except.length > 0)
    query = query.where('key', 'not in', filter.except);
  if (filter.project !== undefined) query = query.where(field('project'), '=', filter.project);
  if (filter.kind !== undefined) query = query.where(field('kind'), '=', filter.kind);
  if (filter.statuses) query = query.where(field('status'), 'in', filter.statuses);
  if (filter.text !== undefined) {
    const searched = sql`concat_ws(' ', key, ${field('name')}, ${field('kind')}, ${field('project')})`;
    query = query.where(sql<boolean>`${searched} ilike ${`%${escapeLike(filter.text)}%`}`);
  }
  if (filter.after) {
    const { updatedAt: time, jobId } = filter.after;
    const updatedAt = sql`coalesce((${field('updatedAt')})::float8, 0)`;
    query = query.where(
      sql<boolean>`(${updatedAt} < ${time} or (${updatedAt} = ${time} and key collate "C" > ${jobId}))`,
    );
  }
  if (filter.activeSince) {
    const { statuses, endedSince } = filter.activeSince;
    query = query.where(
      sql<boolean>`(${field('status')} in (${sql.join(statuses)}) or (${field('endedAt')})::float8 >= ${endedSince})`,
    );
  }
  if (filter.mayHold) {
    const { conditions, now, settings } = filter.mayHold;
    const mayHold = conditions.map((name) => conditionMayHold(name, now, settings));
    if (filter.orRaised) {
      mayHold.push(sql<boolean>`jsonb_array_length(value -> 'progress' -> 'raisedConditions') > 0`);
    }
    query = query
      .where(field('status'), 'in', unfinishedStatuses)
      .where(sql<boolean>`(${sql.join(mayHold, sql` or `)})`);
  }
  const { limit } = filter;
  const rows = await query
    .orderBy(sql`(value -> 'progress' ->> 'updatedAt')::float8 desc nulls last`)
    // Byte order, as the job list compares ids, so pages meet exactly.
    .orderBy(sql`key collate "C"`)
    .$if(limit !== undefined, (ordered) => ordered.limit(limit!))
    .execute();
  return rows as StoredJob[];
}

/**
 * SQL true for every unfinished job that may hold `condition` as of `now`: exact where it
 * can be, a little wide where the fold decides (a learned stall threshold is at least the
 * floor; at risk needs the ETA).
 */
function conditionMayHold(
  condition: ConditionName,
  now: number,
  settings: ConditionSettings,
): RawBuilder<boolean> {
  const number = (path: RawBuilder<unknown>) => sql<number>`(${path})::float8`;
  const progress = (name: string) => sql`value -> 'progress' ->> ${name}`;
  switch (condition) {
    case 'stalled': {
      const least = Math.min(settings.stallFloorMs, settings.defaultStallAfterMs);
      return sql<boolean>`(${progress('status')} = 'running' and ${number(progress('lastEventAt'))} < ${now} - coalesce(${number(progress('stallAfterMs'))}, ${least}))`;
    }
    case 'at_risk':
      return sql<boolean>`${number(progress('deadline'))} >= ${now}`;
    case 'late':
      return sql<boolean>`${number(progress('deadline'))} < ${now}`;
    case 'failure_rate': {
      // As the fold judges it, with a hair of slack for rounding: failed / weight > threshold.
      const outcome = (name: string) => sql`value -> 'progress' -> 'recentOutcomes' ->> ${name}`;
      const threshold = sql`coalesce(${number(progress('failureRateAbove'))}, ${settings.defaultFailureRateAbove}::float8)`;
      return sql<boolean>`(coalesce(${number(outcome('count'))}, 0) >= ${settings.failureRateMinOutcomes} and ${number(outcome('failed'))} >= ${threshold} * ${number(outcome('weight'))} * (1 - 1e-9))`;
    }
  }
}

function mainParts(db: Db, generation: Generation) {
  return db
    .selectFrom('projection_states')
    .select(['key', 'value'])
    .where('projection', '=', generation.projection)
    .where('generation', '=', generation.generation)
    .where('part', '=', mainPart);
}
