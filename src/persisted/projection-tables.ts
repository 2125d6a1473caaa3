import { sql } from 'kysely';
import type { Kysely, RawBuilder, Selectable, Transaction } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import type { JobsPageCursor, LogCursor } from '../cursors.ts';
import { RunnerFencedError } from '../errors.ts';
import { escapeLike } from '../store/escape-like.ts';
import { jobsProjection, mainPart } from './persisted-projection.ts';

/** One generation of a persisted projection, as `projection_checkpoints` holds it. */
export interface Generation {
  projection: string;
  generation: number;
  codeVersion: number;
  status: 'building' | 'active';
  /** The last event folded into this generation's states. */
  cursor: LogCursor;
  /** Events folded so far. */
  events: number;
  updatedAt: Date;
}

/** A stored part of one key's state. */
export interface StateRow {
  key: string;
  part: string;
  value: unknown;
}

type Db = Kysely<Database> | Transaction<Database>;

/** Every generation of one projection, or of all. */
export async function readGenerations(db: Db, projection?: string): Promise<Generation[]> {
  let query = db.selectFrom('projection_checkpoints').selectAll();
  if (projection !== undefined) query = query.where('projection', '=', projection);
  const rows = await query.orderBy('projection').orderBy('generation').execute();
  return rows.map(toGeneration);
}

/** A `projection_checkpoints` row as a `Generation`. */
export function toGeneration(row: Selectable<Database['projection_checkpoints']>): Generation {
  return {
    projection: row.projection,
    generation: row.generation,
    codeVersion: row.code_version,
    status: row.status,
    cursor: { transactionId: BigInt(row.transaction_id), position: BigInt(row.position) },
    events: Number(row.events),
    updatedAt: row.updated_at,
  };
}

/**
 * Starts a 'building' generation after the newest one, folding from the start of the log;
 * returns the building generation that exists already, if one does.
 */
export async function startBuilding(
  db: Kysely<Database>,
  projection: string,
  codeVersion: number,
): Promise<Generation> {
  const find = async () =>
    (await readGenerations(db, projection)).find((row) => row.status === 'building');
  const existing = await find();
  if (existing) return existing;
  try {
    await sql`
      insert into projection_checkpoints (projection, generation, code_version, status)
      select ${projection}, coalesce(max(generation), 0) + 1, ${codeVersion}, 'building'
        from projection_checkpoints where projection = ${projection}`.execute(db);
  } catch (error) {
    // Another process started one at the same moment: use theirs.
    if ((error as { code?: string }).code !== '23505') throw error;
  }
  const created = await find();
  if (!created) throw new Error(`Projection '${projection}': no building generation after insert`);
  return created;
}

/** The requested parts (all when `parts` is omitted) of some keys' states. */
export async function readStateParts(
  db: Db,
  projection: string,
  generation: number,
  keys: readonly string[],
  parts?: readonly string[],
): Promise<Map<string, Map<string, unknown>>> {
  const states = new Map<string, Map<string, unknown>>();
  if (keys.length === 0) return states;
  let query = db
    .selectFrom('projection_states')
    .select(['key', 'part', 'value'])
    .where('projection', '=', projection)
    .where('generation', '=', generation)
    .where('key', 'in', keys);
  if (parts !== undefined) query = query.where('part', 'in', parts);
  for (const row of await query.execute()) {
    let state = states.get(row.key);
    if (!state) states.set(row.key, (state = new Map<string, unknown>()));
    state.set(row.part, row.value);
  }
  return states;
}

/**
 * From the item buckets of one key's state, only the items asked for: what a view needs
 * to fold a short tail without reading whole buckets.
 */
export async function readItemSubset(
  db: Db,
  projection: string,
  generation: number,
  key: string,
  itemParts: readonly string[],
  itemIds: readonly string[],
): Promise<Map<string, unknown>> {
  if (itemParts.length === 0) return new Map();
  const { rows } = await sql<{ part: string; value: unknown }>`
    select s.part,
           (select coalesce(jsonb_object_agg(ids.id, s.value -> ids.id), '{}'::jsonb)
              from jsonb_array_elements_text(${JSON.stringify(itemIds)}::jsonb) as ids(id)
             where s.value ? ids.id) as value
      from projection_states s
     where s.projection = ${projection} and s.generation = ${generation} and s.key = ${key}
       and s.part in (${sql.join(itemParts)})`.execute(db);
  return new Map(rows.map((row) => [row.part, row.value]));
}

/**
 * Writes changed state parts and moves the checkpoint from `from` to `to`, in the caller's
 * transaction. The main part is replaced; any other part (a bucket of items) is merged
 * into the stored one, key by key. The checkpoint moves only if it still stands at `from`, so a runner that
 * lost its lock cannot write over its successor.
 */
export async function writeBatch(
  trx: Transaction<Database>,
  generation: Generation,
  to: LogCursor,
  events: number,
  rows: readonly StateRow[],
): Promise<void> {
  if (rows.length > 0) {
    // One statement for the whole batch; JSON keeps it one parameter.
    await sql`
      insert into projection_states (projection, generation, key, part, value)
      select ${generation.projection}, ${generation.generation}, r.key, r.part, r.value
        from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(key text, part text, value jsonb)
      on conflict (projection, generation, key, part) do update
        set value = case when excluded.part = ${mainPart} then excluded.value
                         else projection_states.value || excluded.value end`.execute(trx);
  }
  const moved = await trx
    .updateTable('projection_checkpoints')
    .set({
      transaction_id: to.transactionId.toString(),
      position: to.position.toString(),
      events: sql`events + ${events}`,
      updated_at: sql`now()`,
    })
    .where('projection', '=', generation.projection)
    .where('generation', '=', generation.generation)
    .where('transaction_id', '=', generation.cursor.transactionId.toString())
    .where('position', '=', generation.cursor.position.toString())
    .executeTakeFirst();
  if (moved.numUpdatedRows !== 1n) {
    throw new RunnerFencedError(generation.projection, generation.generation);
  }
}

/**
 * Makes a caught-up building generation the active one and drops the generation it
 * replaces, in one transaction: readers see the old tables or the new, never a mix.
 */
export async function switchToBuilt(db: Kysely<Database>, built: Generation): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const old = await trx
      .deleteFrom('projection_checkpoints')
      .where('projection', '=', built.projection)
      .where('status', '=', 'active')
      .returning('generation')
      .executeTakeFirst();
    if (old) {
      await trx
        .deleteFrom('projection_states')
        .where('projection', '=', built.projection)
        .where('generation', '=', old.generation)
        .execute();
    }
    const switched = await trx
      .updateTable('projection_checkpoints')
      .set({ status: 'active', updated_at: sql`now()` })
      .where('projection', '=', built.projection)
      .where('generation', '=', built.generation)
      .where('status', '=', 'building')
      .executeTakeFirst();
    if (switched.numUpdatedRows !== 1n) {
      throw new RunnerFencedError(built.projection, built.generation);
    }
  });
}

// The stored states of the `jobs` projection, as the job views read them. This file is the
// only one with SQL over `projection_checkpoints` and `projection_states`.

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
  const { limit } = filter;
  const rows = await query
    .orderBy(sql`(value -> 'progress' ->> 'updatedAt')::float8 desc nulls last`)
    // Byte order, as the job list compares ids, so pages meet exactly.
    .orderBy(sql`key collate "C"`)
    .$if(limit !== undefined, (ordered) => ordered.limit(limit!))
    .execute();
  return rows as StoredJob[];
}

function mainParts(db: Db, generation: Generation) {
  return db
    .selectFrom('projection_states')
    .select(['key', 'value'])
    .where('projection', '=', generation.projection)
    .where('generation', '=', generation.generation)
    .where('part', '=', mainPart);
}
