import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { firstValueFrom, filter, take, toArray } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { executeAppend } from '../src/append/append-statement.ts';
import { prepareStreams } from '../src/append/prepare-streams.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { compareLogCursors, formatLogCursor } from '../src/cursors.ts';
import type { Ledger } from '../src/ledger.ts';
import { postgresUrl, storesUnderTest } from './stores.ts';

const completed = (itemId: string): EventInput => ({ type: 'item.completed', data: { itemId } });
/** A job's first event: a stream with no events takes nothing else first. */
const started = (jobId: string): EventInput => ({
  type: 'job.started',
  data: { name: jobId, kind: 'test', project: 'live' },
});

/** Collects what a subscription delivers until `count` events have arrived. */
function collect(ledger: Ledger, count: number, options: Parameters<Ledger['subscribe']>[0]) {
  return firstValueFrom(ledger.subscribe(options).pipe(take(count), toArray()));
}

const cursorOf = (event: RecordedEvent) => ({
  transactionId: event.transactionId,
  position: event.position,
});

function expectCursorOrder(events: RecordedEvent[]): void {
  for (let index = 1; index < events.length; index += 1) {
    expect(compareLogCursors(cursorOf(events[index - 1]!), cursorOf(events[index]!))).toBe(-1);
  }
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`live subscriptions: ${store.name}`, () => {
    afterAll(() => store.cleanup());

    it('catches up in batches, then follows live, filtered by stream, type and project', async () => {
      const ledger = await store.open();
      try {
        await ledger.append('web-1', [
          { type: 'job.started', data: { name: 'crawl', kind: 'crawl', project: 'web' } },
        ]);
        await ledger.append('shop-1', [
          { type: 'job.started', data: { name: 'thumbs', kind: 'image', project: 'shop' } },
        ]);
        for (let index = 0; index < 25; index += 1) {
          await ledger.append(index % 2 ? 'web-1' : 'shop-1', [completed(`old-${index}`)]);
        }
        // Batches of 4 make the catch-up take several reads.
        const web = collect(ledger, 16, { projects: ['web'], batchSize: 4 });
        const failures = collect(ledger, 2, { types: ['item.failed'], streamIds: ['shop-1'] });
        for (let index = 0; index < 4; index += 1)
          await ledger.append('web-1', [completed(`new-${index}`)]);
        await ledger.append('shop-1', [
          { type: 'item.failed', data: { itemId: 'a', error: { message: 'boom' } } },
          { type: 'item.failed', data: { itemId: 'b', error: { message: 'boom' } } },
        ]);
        const webEvents = await web;
        expect(new Set(webEvents.map((event) => event.streamId))).toEqual(new Set(['web-1']));
        expect(webEvents.map((event) => event.version)).toEqual(
          Array.from({ length: 16 }, (_, index) => index + 1),
        );
        expectCursorOrder(webEvents);
        expect((await failures).map((event) => event.data)).toMatchObject([
          { itemId: 'a' },
          { itemId: 'b' },
        ]);
      } finally {
        await ledger.close();
      }
    });

    it('delivers within the poll interval when wake-ups never come', async () => {
      const ledger = await store.open();
      try {
        await sql`alter table events disable trigger events_notify`.execute(ledger.db);
        const after = await ledger.liveCursor();
        const delivered = collect(ledger, 3, { after, pollIntervalMs: 50 });
        await ledger.append('quiet', [started('quiet'), completed('a')]);
        await ledger.append('quiet', [completed('b')]);
        expect((await delivered).map((event) => event.version)).toEqual([1, 2, 3]);
      } finally {
        await ledger.close();
      }
    });

    it('watch emits the current progress first, then each change', async () => {
      const ledger = await store.open();
      try {
        const job = ledger.job();
        await job.start({ name: 'watched', kind: 'crawl', project: 'web', total: 3 });
        await job.itemCompleted('a');
        const snapshots = firstValueFrom(
          ledger.watch(job.jobId).pipe(
            filter((progress) => progress.status === 'completed'),
            take(1),
          ),
        );
        const first = await firstValueFrom(ledger.watch(job.jobId));
        expect(first.processed).toBe(1);
        await job.itemCompleted('b');
        await job.itemCompleted('c');
        await job.complete();
        const last = await snapshots;
        expect(last.processed).toBe(3);
        expect(last.percent).toBe(100);
      } finally {
        await ledger.close();
      }
    });

    it('watchProject lists the project jobs and updates when one changes', async () => {
      const ledger = await store.open();
      try {
        const job = ledger.job('overview-1');
        await job.start({ name: 'one', kind: 'crawl', project: 'overview', total: 2 });
        const lists = firstValueFrom(
          ledger.watchProject('overview', {}, { throttleMs: 10, pollIntervalMs: 50 }).pipe(
            filter((jobs) => jobs[0]?.progress.processed === 2),
            take(1),
          ),
        );
        await ledger.job('other').start({ name: 'x', kind: 'crawl', project: 'elsewhere' });
        await job.itemCompleted('a');
        await job.itemCompleted('b');
        const jobs = await lists;
        expect(jobs.map((view) => view.jobId)).toEqual(['overview-1']);
        // Every item done, the job still running: just short of 100.
        expect(jobs[0]!.progress.percent).toBe(99.99);
      } finally {
        await ledger.close();
      }
    });

    it('rejects bad options with what was expected', async () => {
      const ledger = await store.open();
      try {
        await expect(collect(ledger, 1, { batchSize: 0 })).rejects.toThrow(/batchSize/);
        await expect(collect(ledger, 1, { after: 'nope' })).rejects.toThrow(
          /expected a cursor "<transactionId>:<position>"/,
        );
      } finally {
        await ledger.close();
      }
    });
  });
}

const postgres = storesUnderTest().find((store) => store.name === 'postgres')!;

// PGlite runs one transaction at a time: only a server can interleave writers.
describe.skipIf(!postgres.available)('live subscriptions under torture: postgres', () => {
  afterAll(() => postgres.cleanup());

  it('sees every committed event once, in cursor order, and no rolled-back one', async () => {
    const schema = `hw_torture_${Date.now()}`;
    const ledger = await postgres.open({ schema });
    // Writers on a ledger of their own: the subscriber's pool never waits behind them.
    const writers = await postgres.open({ schema, poolSize: 20 });
    try {
      const seen: RecordedEvent[] = [];
      const subscription = ledger
        .subscribe({ after: await ledger.liveCursor(), pollIntervalMs: 200 })
        .subscribe((event) => seen.push(event));
      const committed = new Set<string>();
      const rolledBack = new Set<string>();
      const writer = async (id: number) => {
        for (let round = 0; round < 15; round += 1) {
          const streamId = `w${id}-${round}`;
          const roll = (id * 31 + round * 7) % 10;
          const hold = (id * 13 + round * 5) % 40;
          try {
            await writers.db.transaction().execute(async (trx) => {
              const [result] = await executeAppend(
                trx,
                prepareStreams(
                  [
                    {
                      streamId,
                      events: [
                        started(streamId),
                        completed(`${streamId}-a`),
                        completed(`${streamId}-b`),
                      ],
                    },
                  ],
                  new Date(),
                ),
              );
              // Holding the transaction open keeps later writers' events invisible meanwhile.
              await new Promise((resolve) => setTimeout(resolve, hold));
              if (roll === 0) throw new Error('roll back');
              for (const appended of result!.events) committed.add(appended.eventId);
            });
          } catch (error) {
            if ((error as Error).message !== 'roll back') throw error;
            rolledBack.add(streamId);
          }
        }
      };
      await Promise.all(Array.from({ length: 12 }, (_, id) => writer(id)));
      const deadline = Date.now() + 20_000;
      while (seen.length < committed.size && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      subscription.unsubscribe();
      expect(rolledBack.size).toBeGreaterThan(0);
      expect(seen.map((event) => event.eventId).sort()).toEqual([...committed].sort());
      expect(seen.some((event) => rolledBack.has(event.streamId))).toBe(false);
      expectCursorOrder(seen);
    } finally {
      await writers.close();
      await ledger.close();
    }
  });

  it('keeps delivering when its LISTEN connection is killed, and reconnects', async () => {
    // A name and a database of its own (postgresUrl): the server is shared, and other
    // programs' listeners are not ours to terminate.
    const applicationName = `headway-live-${randomUUID().slice(0, 8)}`;
    const ledger = await postgres.open({ applicationName });
    const admin = new pg.Client({ connectionString: postgresUrl });
    await admin.connect();
    try {
      const seen: RecordedEvent[] = [];
      const subscription = ledger
        .subscribe({ after: await ledger.liveCursor(), pollIntervalMs: 100 })
        .subscribe((event) => seen.push(event));
      const listeners = async () =>
        (
          await admin.query<{ pid: number }>(
            `select pid from pg_stat_activity
              where datname = current_database() and application_name = $1 and query ilike 'LISTEN%'`,
            [`${applicationName}-listen`],
          )
        ).rows.map((row) => row.pid);
      await until(async () => (await listeners()).length > 0);
      const before = await listeners();
      for (const pid of before) await admin.query('select pg_terminate_backend($1)', [pid]);
      await ledger.append('after-kill', [started('after-kill'), completed('a')]);
      await until(() => Promise.resolve(seen.length === 2));
      // The listener comes back on a new connection.
      await until(async () => (await listeners()).some((pid) => !before.includes(pid)));
      await ledger.append('after-kill', [completed('b')]);
      await until(() => Promise.resolve(seen.length === 3));
      subscription.unsubscribe();
      expect(seen.map((event) => event.version)).toEqual([1, 2, 3]);
      // Unsubscribing closes the listening connection.
      await until(async () => (await listeners()).length === 0);
      expect(formatLogCursor(cursorOf(seen[2]!))).toMatch(/^\d+:\d+$/);
    } finally {
      await admin.end();
      await ledger.close();
    }
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
