import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { Database } from '../schema/database.ts';
import { SqlFileMigrationProvider } from '../src/store/migrations.ts';
import { openLedger } from '../src/open-ledger.ts';
import { postgresAvailable, postgresUrl } from './stores.ts';

// Migration 0008 moves an unpartitioned log into the partitioned table. A log of a million
// events is written straight into the schema of 0007 with generate_series, then migrated;
// rows, stream heads and a checksum of every row must be the same after.

// 1,020,000 events: 1,700 jobs in each of six months.
const jobs = 10_200;
const eventsPerJob = 100;
const months = 6;
const schema = `hw_test_partitioning_${randomBytes(5).toString('hex')}`;

/** Count and an order-independent checksum of every column of every event row. */
const checksumOfEvents = sql<{ events: string; checksum: string }>`
  select count(*)::text as events,
         sum(('x' || substr(md5(concat_ws('|', position, transaction_id, stream_id, version,
             event_id, type, schema_version, data::text, metadata::text,
             (extract(epoch from occurred_at) * 1000000)::int8,
             (extract(epoch from recorded_at) * 1000000)::int8)), 1, 15))::bit(60)::int8::numeric)::text
           as checksum
    from events`;

const streamHeads = sql<{ heads: string }>`
  select md5(string_agg(stream_id || ':' || version, ',' order by stream_id)) as heads
    from streams`;

describe.skipIf(!postgresAvailable)('migration 0008 on a log of a million events', () => {
  const pool = new pg.Pool({
    connectionString: postgresUrl,
    options: `-c search_path=${schema}`,
    max: 2,
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const migrator = new Migrator({
    db,
    provider: new SqlFileMigrationProvider(),
    migrationTableSchema: schema,
  });

  afterAll(async () => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(db);
    await db.destroy();
  });

  it('moves every row into its month, with the same positions, heads and checksum', async () => {
    await sql`create schema ${sql.id(schema)}`.execute(db);
    const before0008 = await migrator.migrateTo('0007_jobs_start_with_job_started');
    expect(before0008.error).toBeUndefined();

    // Each job's events, then its head; jobs started across six months.
    await sql`
      insert into events (stream_id, version, event_id, type, schema_version, data, metadata,
                          occurred_at)
      select 'job-' || j, v, md5(j || '/' || v)::uuid,
             case when v = 1 then 'job.started' when v = ${eventsPerJob} then 'job.completed'
                  else 'item.completed' end,
             1,
             case when v = 1 then jsonb_build_object('name', 'job ' || j, 'kind', 'crawl',
                                                     'project', 'p' || (j % 7))
                  when v = ${eventsPerJob} then '{}'::jsonb
                  else jsonb_build_object('itemId', 'item-' || v, 'durationMs', v) end,
             jsonb_build_object('source', 'generated'),
             timestamptz '2026-01-01' + (j % ${months}) * interval '1 month' + v * interval '1 second'
        from generate_series(1, ${jobs}) as j, generate_series(1, ${eventsPerJob}) as v`.execute(
      db,
    );
    await sql`
      insert into streams (stream_id, version, created_at, updated_at)
      select 'job-' || j, ${eventsPerJob},
             timestamptz '2026-01-01' + (j % ${months}) * interval '1 month',
             timestamptz '2026-01-01' + (j % ${months}) * interval '1 month'
        from generate_series(1, ${jobs}) as j`.execute(db);
    await sql`analyze events`.execute(db);

    const before = (await checksumOfEvents.execute(db)).rows[0]!;
    const headsBefore = (await streamHeads.execute(db)).rows[0]!;
    expect(Number(before.events)).toBe(jobs * eventsPerJob);

    const started = performance.now();
    const migrated = await migrator.migrateToLatest();
    const seconds = (performance.now() - started) / 1000;
    expect(migrated.error).toBeUndefined();
    console.log(
      `migration 0008 moved ${before.events} events of ${jobs} jobs into ${months} partitions in ${seconds.toFixed(1)} s`,
    );

    expect((await checksumOfEvents.execute(db)).rows[0]).toEqual(before);
    expect((await streamHeads.execute(db)).rows[0]).toEqual(headsBefore);

    // Each row lies in its stream's month partition, none in the default one.
    const { rows: placement } = await sql<{ partition: string; events: string }>`
      select e.tableoid::regclass::text as partition, count(*)::text as events
        from events e group by 1 order by 1`.execute(db);
    expect(placement).toEqual(
      Array.from({ length: months }, (_, month) => ({
        partition: `events_2026_0${month + 1}`,
        events: String((jobs / months) * eventsPerJob),
      })),
    );
    const { rows: misplaced } = await sql<{ n: string }>`
      select count(*)::text as n from events e join streams s using (stream_id)
       where e.stream_month <> s.stream_month`.execute(db);
    expect(misplaced[0]!.n).toBe('0');

    // The log goes on: an append to a migrated job lands after the copied positions.
    const ledger = await openLedger({ databaseUrl: postgresUrl, schema });
    try {
      const result = await ledger.append(
        'job-1',
        [{ type: 'log.written', data: { level: 'info', message: 'after' } }],
        {
          expectedVersion: eventsPerJob,
        },
      );
      expect(result.events[0]!.version).toBe(eventsPerJob + 1);
      expect(result.events[0]!.position).toBeGreaterThan(BigInt(jobs * eventsPerJob));
      expect((await ledger.readStream('job-1')).length).toBe(eventsPerJob + 1);
    } finally {
      await ledger.close();
    }
  }, 600_000);
});

describe('migration 0008 on the embedded store', () => {
  it('moves a small log into month partitions with the same rows and heads', async () => {
    const ledger = await openLedger({ dataDir: 'memory://', migrate: false });
    try {
      const migrator = new Migrator({ db: ledger.db, provider: new SqlFileMigrationProvider() });
      expect((await migrator.migrateTo('0007_jobs_start_with_job_started')).error).toBeUndefined();
      await sql`
        insert into events (stream_id, version, event_id, type, schema_version, data, occurred_at)
        select 'job-' || j, v, md5(j || '/' || v)::uuid,
               case when v = 1 then 'job.started' else 'item.completed' end, 1,
               case when v = 1 then jsonb_build_object('name', 'n', 'kind', 'k', 'project', 'p')
                    else jsonb_build_object('itemId', 'item-' || v) end,
               timestamptz '2026-03-01' + v * interval '1 second'
          from generate_series(1, 30) as j, generate_series(1, 20) as v`.execute(ledger.db);
      await sql`
        insert into streams (stream_id, version, created_at)
        select 'job-' || j, 20, timestamptz '2026-01-15' + (j % 3) * interval '1 month'
          from generate_series(1, 30) as j`.execute(ledger.db);
      const before = (await checksumOfEvents.execute(ledger.db)).rows[0]!;
      const headsBefore = (await streamHeads.execute(ledger.db)).rows[0]!;

      expect((await migrator.migrateToLatest()).error).toBeUndefined();

      expect((await checksumOfEvents.execute(ledger.db)).rows[0]).toEqual(before);
      expect((await streamHeads.execute(ledger.db)).rows[0]).toEqual(headsBefore);
      const { rows } = await sql<{ partition: string; events: string }>`
        select tableoid::regclass::text as partition, count(*)::text as events
          from events group by 1 order by 1`.execute(ledger.db);
      expect(rows).toEqual([
        { partition: 'events_2026_01', events: '200' },
        { partition: 'events_2026_02', events: '200' },
        { partition: 'events_2026_03', events: '200' },
      ]);
      const appended = await ledger.append('job-3', [{ type: 'job.completed', data: {} }], {
        expectedVersion: 20,
      });
      expect(appended.events[0]!.position).toBe(601n);
    } finally {
      await ledger.close();
    }
  });
});
