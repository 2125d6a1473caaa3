import { sql } from 'kysely';
import type { Kysely, Selectable, Transaction } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { LogCursor } from '../cursors.ts';
import { RunnerFencedError } from '../errors.ts';
import { mainPart } from './persisted-projection.ts';

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

/** A connection or a transaction. */
export type Db = Kysely<Database> | Transaction<Database>;

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
