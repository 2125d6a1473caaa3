import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../schema/database.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** One month partition of `events` (migration 0008). */
export interface EventPartition {
  /** Its table name, `events_YYYY_MM`. */
  name: string;
  /** Its month, `YYYY-MM`. */
  month: string;
  /** The first day of its month and of the next one, UTC epoch ms. */
  startsAt: number;
  endsAt: number;
}

const partitionName = /^events_(\d{4})_(\d{2})$/;

/** The month partitions of the current schema's `events`, oldest first. */
export async function listEventPartitions(db: Db): Promise<EventPartition[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name
      from pg_inherits i
      join pg_class c on c.oid = i.inhrelid
     where i.inhparent = to_regclass(quote_ident(current_schema()) || '.events')
     order by c.relname`.execute(db);
  const partitions: EventPartition[] = [];
  for (const { name } of rows) {
    const match = partitionName.exec(name);
    if (!match) continue;
    const year = Number(match[1]);
    const month = Number(match[2]);
    partitions.push({
      name,
      month: `${match[1]}-${match[2]}`,
      startsAt: Date.UTC(year, month - 1, 1),
      endsAt: Date.UTC(year, month, 1),
    });
  }
  return partitions;
}

/** Events of each month held in the default partition (months with no partition of their own). */
export async function defaultPartitionMonths(db: Db): Promise<Map<string, number>> {
  // Made by a ledger's first append: a ledger that never appended has none.
  const exists = await sql<{ found: boolean }>`
    select to_regclass(quote_ident(current_schema()) || '.events_default') is not null as found`.execute(
    db,
  );
  if (!exists.rows[0]?.found) return new Map();
  const { rows } = await sql<{ month: string; events: string | number | bigint }>`
    select to_char(stream_month, 'YYYY-MM') as month, count(*) as events
      from events_default group by 1 order by 1`.execute(db);
  return new Map(rows.map((row) => [row.month, Number(row.events)]));
}

/** Each job of a partition with its number of events, by job id. */
export async function partitionJobs(
  db: Db,
  partition: EventPartition,
): Promise<{ jobId: string; events: number }[]> {
  const { rows } = await sql<{ job_id: string; events: string | number | bigint }>`
    select stream_id as job_id, count(*) as events
      from ${sql.id(partition.name)} group by stream_id order by stream_id collate "C"`.execute(db);
  return rows.map((row) => ({ jobId: row.job_id, events: Number(row.events) }));
}

/** How many events a partition holds. */
export async function countPartitionEvents(db: Db, partition: EventPartition): Promise<number> {
  const { rows } = await sql<{ events: string | number | bigint }>`
    select count(*) as events from ${sql.id(partition.name)}`.execute(db);
  return Number(rows[0]!.events);
}

/** Detaches a month partition from `events` and drops it: no row is updated or deleted. */
export async function dropEventPartition(db: Db, partition: EventPartition): Promise<void> {
  await sql`alter table events detach partition ${sql.id(partition.name)}`.execute(db);
  await sql`drop table ${sql.id(partition.name)}`.execute(db);
}
