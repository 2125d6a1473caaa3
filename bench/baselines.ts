import { performance } from 'node:perf_hooks';
import type { RawRow } from './generate-events.ts';
import { perSecond, sequentialLatency } from './stats.ts';
import type { LatencyFigures } from './stats.ts';

/**
 * What PostgreSQL itself can do on this machine, through `pg` with no library in
 * between: the yardstick every figure of ours is divided by. The PGlite figures use the
 * same statements on the embedded store.
 */

/**
 * What a baseline needs of a connection: a `pg` client, or PGlite through the ledger's own
 * Kysely (bench/pglite-workloads.ts), so one copy of each statement serves both stores.
 */
export interface RawSql {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * The same columns, defaults, identity, constraints and indexes as `events`, taken from
 * the migrated table itself so the two cannot drift; `LIKE` copies no triggers.
 */
export async function createRawTable(client: RawSql): Promise<void> {
  await client.query('create table raw_events (like events including all)');
}

const columns = 'stream_id, version, event_id, type, schema_version, data, metadata, occurred_at';

const unnestInsert = `
  insert into raw_events (${columns})
  select * from unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::int[],
                       $6::jsonb[], $7::jsonb[], $8::timestamptz[])`;

/** Inserts rows with one `insert ... select from unnest(...)` statement per chunk. */
export async function insertRawRows(
  client: RawSql,
  rows: readonly RawRow[],
  perStatement: number,
): Promise<void> {
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    await client.query(unnestInsert, [
      chunk.map((row) => row.streamId),
      chunk.map((row) => row.version),
      chunk.map((row) => row.eventId),
      chunk.map((row) => row.type),
      chunk.map((row) => row.schemaVersion),
      chunk.map((row) => row.data),
      chunk.map((row) => row.metadata),
      chunk.map((row) => row.occurredAt),
    ]);
  }
}

/** (a) Raw batched insert, 1,000 rows per autocommit statement: rows per second. */
export async function rawBatchInsert(client: RawSql, rows: readonly RawRow[]): Promise<number> {
  const started = performance.now();
  await insertRawRows(client, rows, 1_000);
  return perSecond(rows.length, performance.now() - started);
}

/** (b) Raw single-row autocommit inserts on one connection: throughput and latency. */
export function rawSingleInsert(client: RawSql, rows: readonly RawRow[]): Promise<LatencyFigures> {
  const text = `insert into raw_events (${columns}) values ($1, $2, $3, $4, $5, $6, $7, $8)`;
  return sequentialLatency(rows.length, (index) => {
    const row = rows[index]!;
    return client.query(text, [
      row.streamId,
      row.version,
      row.eventId,
      row.type,
      row.schemaVersion,
      row.data,
      row.metadata,
      row.occurredAt,
    ]);
  });
}

/**
 * The columns the ledger reads, times as integer microseconds as it selects them, so a ratio
 * measures the ledger's own work, not a cheaper decoding of timestamps.
 */
export const rawReadColumns = `position, transaction_id, stream_id, version, event_id, type,
  schema_version, data, metadata,
  (date_part('epoch', occurred_at) * 1000000)::int8 as occurred_us,
  (date_part('epoch', recorded_at) * 1000000)::int8 as recorded_us`;

/**
 * (c) Raw keyset read of the whole table in pages of 10,000, rows decoded by `pg` as
 * usual (jsonb parsed): rows per second and rows read. It selects the times as the ledger
 * does (integer microseconds), so the ratio measures the ledger's own work, not a cheaper
 * decoding of timestamps; `select *` with `Date`s is about a third slower still.
 */
export async function rawKeysetRead(
  client: RawSql,
  maxRows = Number.POSITIVE_INFINITY,
): Promise<{ perSec: number; rows: number }> {
  const text = `select ${rawReadColumns} from raw_events
                 where position > $1 order by position limit 10000`;
  const started = performance.now();
  let after: unknown = '0';
  let rows = 0;
  while (rows < maxRows) {
    const page = (await client.query(text, [after])) as { rows: { position: unknown }[] };
    rows += page.rows.length;
    if (page.rows.length < 10_000) break;
    after = page.rows.at(-1)!.position;
  }
  return { perSec: perSecond(rows, performance.now() - started), rows };
}
