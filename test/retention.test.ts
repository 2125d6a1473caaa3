import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { importNdjson } from '../src/append/ndjson.ts';
import { IdempotencyConflictError, InvalidInputError } from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { runHeadway } from './cli-runner.ts';
import { storesUnderTest } from './stores.ts';

// Old jobs are made the honest way: as the owner, a job's streams row is created with an old
// month (and that month's partition made), then its events are appended through
// headway_append with producer times in that month. Retention runs on the real clock.

const started = (at: string): EventInput => ({
  type: 'job.started',
  data: { name: 'crawl', kind: 'crawl', project: 'archive-test', total: 2 },
  occurredAt: at,
});
const item = (itemId: string, at: string): EventInput => ({
  type: 'item.completed',
  data: { itemId, durationMs: 5 },
  occurredAt: at,
});

/** Opens a job in `month` (YYYY-MM) as the owner would find it after a real month passed. */
async function openOldJob(ledger: Ledger, jobId: string, month: string): Promise<void> {
  await sql`select headway_events_partition(${`${month}-01`}::date, true)`.execute(ledger.db);
  await sql`insert into streams (stream_id, version, stream_month)
            values (${jobId}, 0, ${`${month}-01`}::date)`.execute(ledger.db);
}

async function oldJob(
  ledger: Ledger,
  jobId: string,
  month: string,
  end: 'job.completed' | 'job.failed' | null,
): Promise<void> {
  await openOldJob(ledger, jobId, month);
  const events: EventInput[] = [
    started(`${month}-03T10:00:00.000Z`),
    item('a', `${month}-03T10:01:00.000Z`),
    item('b', `${month}-03T10:02:00.000Z`),
  ];
  if (end === 'job.completed') {
    events.push({ type: 'job.completed', data: {}, occurredAt: `${month}-03T10:03:00.000Z` });
  } else if (end === 'job.failed') {
    events.push({
      type: 'job.failed',
      data: { error: { message: 'disk full' } },
      occurredAt: `${month}-03T10:03:00.000Z`,
    });
  }
  await ledger.append(jobId, events);
}

async function partitionNames(ledger: Ledger): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = to_regclass(quote_ident(current_schema()) || '.events')
     order by 1`.execute(ledger.db);
  return rows.map((row) => row.name);
}

async function countEvents(ledger: Ledger): Promise<number> {
  const { rows } = await sql<{ n: string | number }>`select count(*) as n from events`.execute(
    ledger.db,
  );
  return Number(rows[0]!.n);
}

/** The envelope an archive must restore. */
const restored = (events: Awaited<ReturnType<Ledger['readStream']>>) =>
  events.map((event) => ({
    streamId: event.streamId,
    version: event.version,
    eventId: event.eventId,
    type: event.type,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: event.metadata,
    occurredAt: event.occurredAt.toISOString(),
  }));

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`retention: ${store.name}`, () => {
    let ledger: Ledger;
    let archiveDir: string;
    const originals = new Map<string, ReturnType<typeof restored>>();
    const summaries = new Map<string, unknown>();

    beforeAll(async () => {
      archiveDir = await mkdtemp(join(tmpdir(), 'headway-retention-'));
      ledger = await store.open();
      await oldJob(ledger, 'old-completed', '2020-01', 'job.completed');
      await oldJob(ledger, 'old-failed', '2020-01', 'job.failed');
      await oldJob(ledger, 'feb-completed', '2020-02', 'job.completed');
      await oldJob(ledger, 'feb-running', '2020-02', null);
      await ledger.append('new-completed', [
        started(new Date().toISOString()),
        { type: 'job.completed', data: {} },
      ]);
      for (const jobId of ['old-completed', 'old-failed']) {
        originals.set(jobId, restored(await ledger.readStream(jobId)));
        summaries.set(jobId, await ledger.summary(jobId));
      }
    }, 120_000);

    afterAll(async () => {
      await ledger?.close();
      await store.cleanup();
      await rm(archiveDir, { recursive: true, force: true });
    });

    it('keeps one job in one partition of its month, and the month partitions exist', async () => {
      const names = await partitionNames(ledger);
      expect(names).toEqual(expect.arrayContaining(['events_2020_01', 'events_2020_02']));
      const { rows } = await sql<{ partition: string; jobs: string | number }>`
        select tableoid::regclass::text as partition, count(distinct stream_id) as jobs
          from events group by 1 order by 1`.execute(ledger.db);
      const byPartition = Object.fromEntries(rows.map((row) => [row.partition, Number(row.jobs)]));
      expect(byPartition['events_2020_01']).toBe(2);
      expect(byPartition['events_2020_02']).toBe(2);
      expect(byPartition['events_default']).toBeUndefined();
    });

    it('refuses UPDATE, DELETE and TRUNCATE on events and on each partition', async () => {
      const statements = [
        ...['events', 'events_2020_01'].flatMap((table) => [
          `update ${table} set type = 'x.changed'`,
          `delete from ${table}`,
        ]),
        // The default partition is empty: a row trigger has nothing to refuse there.
        ...['events', 'events_2020_01', 'events_default'].map((table) => `truncate ${table}`),
      ];
      for (const statement of statements) {
        await expect(sql.raw(statement).execute(ledger.db), statement).rejects.toThrow(
          /events are immutable/,
        );
      }
      expect(await countEvents(ledger)).toBe(17);
    });

    it('refuses an event id a job of another month holds', async () => {
      const [first] = await ledger.readStream('feb-completed');
      await expect(
        ledger.append('takes-an-old-id', [
          { ...started(new Date().toISOString()), eventId: first!.eventId },
        ]),
      ).rejects.toBeInstanceOf(IdempotencyConflictError);
      expect(await ledger.streamVersion('takes-an-old-id')).toBe(0);
      // A retry of the old job's own batch is still a retry.
      const again = await ledger.append('feb-completed', [
        { ...started('2020-02-03T10:00:00.000Z'), eventId: first!.eventId },
      ]);
      expect(again.events[0]!.position).toBe(first!.position);
    });

    it('refuses a bad age, saying what it expected and what it received', async () => {
      await expect(ledger.retention({ olderThan: 'banana' })).rejects.toThrow(InvalidInputError);
      await expect(ledger.retention({ olderThan: 'banana' })).rejects.toThrowError(
        'olderThan: expected an age such as 90d, 12h, 30m, 45s or 2w, or a positive whole number of milliseconds, received "banana"',
      );
      await expect(ledger.retention({ olderThan: -5 })).rejects.toThrow(/received -5/);
    });

    it('plans in a dry run and changes nothing', async () => {
      const before = await partitionNames(ledger);
      const plan = await ledger.retention({ olderThan: '90d', archiveDir, dryRun: true });
      expect(plan.dryRun).toBe(true);
      const january = plan.partitions.find((p) => p.partition === 'events_2020_01')!;
      expect(january).toMatchObject({
        action: 'archive',
        events: 8,
        jobs: ['old-completed', 'old-failed'],
        heldBack: [],
      });
      expect(january.archive).toBeUndefined();
      const february = plan.partitions.find((p) => p.partition === 'events_2020_02')!;
      expect(february.action).toBe('keep');
      expect(february.heldBack).toEqual(['job feb-running is running']);
      const current = plan.partitions.filter((p) => p.jobs.includes('new-completed'));
      expect(current).toHaveLength(1);
      expect(current[0]!.action).toBe('keep');
      expect(current[0]!.heldBack[0]).toMatch(/after the cutoff/);
      expect(plan.archivedJobs).toBe(2);
      expect(plan.archivedEvents).toBe(8);

      expect(await partitionNames(ledger)).toEqual(before);
      expect(await countEvents(ledger)).toBe(17);
      expect(existsSync(join(archiveDir, 'events_2020_01'))).toBe(false);
      const archives = await ledger.db.selectFrom('archives').selectAll().execute();
      expect(archives).toEqual([]);
      expect((await ledger.status('old-completed'))?.archived).toBeUndefined();
    });

    it('archives, checks, records and drops the months whose jobs all finished before the cutoff', async () => {
      const result = await ledger.retention({ olderThan: '90d', archiveDir });
      const january = result.partitions.find((p) => p.partition === 'events_2020_01')!;
      expect(january.action).toBe('archive');
      expect(january.archive).toMatchObject({ events: 8 });
      const file = january.archive!.file;
      expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(8);

      const names = await partitionNames(ledger);
      expect(names).not.toContain('events_2020_01');
      expect(names).toContain('events_2020_02');
      expect(await countEvents(ledger)).toBe(9);
      expect(await ledger.readStream('old-completed')).toEqual([]);

      const archives = await ledger.db.selectFrom('archives').selectAll().execute();
      expect(archives).toHaveLength(1);
      expect(archives[0]).toMatchObject({
        partition: 'events_2020_01',
        file,
        jobs: 2,
        sha256: january.archive!.sha256,
      });
      expect(Number(archives[0]!.events)).toBe(8);
      // The stream heads stay, as their triggers demand.
      expect(await ledger.streamVersion('old-completed')).toBe(4);
    });

    it('says an archived job is archived, in its status and in the job list, across a rebuild', async () => {
      const check = async () => {
        const status = await ledger.status('old-failed');
        expect(status?.progress.status).toBe('failed');
        expect(status?.archived).toMatchObject({ month: '2020-01' });
        expect(status?.archived?.file).toMatch(/events_2020_01\..*\.ndjson$/);
        const jobs = await ledger.jobs({ project: 'archive-test' });
        const listed = Object.fromEntries(jobs.map((job) => [job.jobId, job.archived?.month]));
        expect(listed).toEqual({
          'old-completed': '2020-01',
          'old-failed': '2020-01',
          'feb-completed': undefined,
          'feb-running': undefined,
          'new-completed': undefined,
        });
        const failed = await ledger.jobs({ status: ['failed'] });
        expect(failed.map((job) => job.jobId)).toEqual(['old-failed']);
        const one = await ledger.jobs({ jobId: 'old-completed' });
        expect(one.map((job) => job.archived?.month)).toEqual(['2020-01']);
        // The summary folded before the events went, not an empty fold of none.
        for (const jobId of ['old-completed', 'old-failed']) {
          expect(await ledger.summary(jobId)).toEqual(summaries.get(jobId));
        }
        expect((await ledger.summary('old-completed'))?.completed).toBeGreaterThan(0);
      };
      await check();
      await ledger.catchUpProjections();
      await check();
      await ledger.rebuild();
      await check();
    });

    it('refuses appends to an archived job, writing nothing', async () => {
      await expect(
        ledger.append('old-completed', [item('c', new Date().toISOString())]),
      ).rejects.toThrowError(`Job 'old-completed' is archived`);
      await expect(
        ledger.append('old-completed', [started(new Date().toISOString())], {
          expectedVersion: 'no_stream',
        }),
      ).rejects.toThrow(/archived/);
      expect(await ledger.streamVersion('old-completed')).toBe(4);
    });

    it('restores an archive into a fresh ledger: same ids, versions, types, data and times', async () => {
      const [archive] = await ledger.db.selectFrom('archives').select('file').execute();
      const fresh = await store.open();
      try {
        const lines = readFileSync(archive!.file, 'utf8').split('\n');
        const result = await importNdjson(fresh, lines);
        expect(result).toMatchObject({ events: 8, streams: 2, imported: 8 });
        for (const [jobId, events] of originals) {
          expect(restored(await fresh.readStream(jobId))).toEqual(events);
        }
      } finally {
        await fresh.close();
      }
    });

    it('archives the rest once its last job finished, and appends open new months afterwards', async () => {
      await ledger.append('feb-running', [
        { type: 'job.cancelled', data: {}, occurredAt: '2020-02-04T00:00:00.000Z' },
      ]);
      const result = await ledger.retention({ olderThan: '90d', archiveDir });
      const february = result.partitions.find((p) => p.partition === 'events_2020_02')!;
      expect(february.action).toBe('archive');
      expect(february.jobs).toEqual(['feb-completed', 'feb-running']);
      expect(await partitionNames(ledger)).not.toContain('events_2020_02');
      expect((await ledger.status('feb-running'))?.archived?.month).toBe('2020-02');
      // A new job still appends.
      const id = `after-${randomUUID()}`;
      await ledger.append(id, [started(new Date().toISOString())]);
      expect(await ledger.streamVersion(id)).toBe(1);
    });
  });
}

describe('headway retention', () => {
  it('says what it expected of --older-than and what it received', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'headway-retention-cli-'));
    try {
      const bad = await runHeadway(['--data-dir', dataDir, 'retention', '--older-than', 'banana']);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain(
        'olderThan: expected an age such as 90d, 12h, 30m, 45s or 2w, or a positive whole number of milliseconds, received "banana"',
      );
      const dry = await runHeadway([
        '--data-dir',
        dataDir,
        'retention',
        '--older-than',
        '90d',
        '--dry-run',
        '--json',
      ]);
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, archivedJobs: 0 });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
