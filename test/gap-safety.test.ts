import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { executeAppend } from '../src/append/append-statement.ts';
import { prepareStreams } from '../src/append/prepare-streams.ts';
import type { Ledger } from '../src/ledger.ts';
import { storesUnderTest } from './stores.ts';

const postgres = storesUnderTest().find((store) => store.name === 'postgres')!;
const event = (itemId: string): EventInput => ({ type: 'item.completed', data: { itemId } });
/** A job's first event: a stream with no events takes nothing else first. */
const started = (jobId: string): EventInput => ({
  type: 'job.started',
  data: { name: jobId, kind: 'test', project: 'gap-safety' },
});

/** Appends inside a transaction that stays open until `commit` is called. */
async function openSlowAppend(ledger: Ledger, streamId: string) {
  let commit!: () => void;
  const gate = new Promise<void>((resolve) => (commit = resolve));
  let appended!: (position: bigint) => void;
  const position = new Promise<bigint>((resolve) => (appended = resolve));
  const done = ledger.db.transaction().execute(async (trx) => {
    const [result] = await executeAppend(
      trx,
      prepareStreams([{ streamId, events: [event('slow')] }], new Date()),
    );
    appended(result!.events[0]!.position);
    await gate;
  });
  return { position: await position, commit: async () => (commit(), done) };
}

// PGlite runs one transaction at a time, so only a server can interleave them.
describe.skipIf(!postgres.available)('gap-safe reading on PostgreSQL', () => {
  afterAll(() => postgres.cleanup());

  it('does not skip a transaction that took its position first and committed last', async () => {
    const ledger = await postgres.open();
    try {
      await ledger.appendMany([
        { streamId: 'before', events: [started('before'), event('b')] },
        { streamId: 'slow', events: [started('slow')] },
        { streamId: 'fast', events: [started('fast')] },
      ]);
      // The cursor past those four rows, once the horizon shows them (another suite's open
      // transaction on the shared server may hold it back a while).
      let seeded = await ledger.readAll();
      for (const deadline = Date.now() + 30_000; seeded.events.length < 4;) {
        if (Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
        seeded = await ledger.readAll();
      }
      expect(seeded.events).toHaveLength(4);
      const cursor = seeded.next;

      const slow = await openSlowAppend(ledger, 'slow');
      const fast = await ledger.append('fast', [event('f')]);
      expect(fast.events[0]!.position > slow.position).toBe(true);

      // A reader following positions alone would take `fast` now and never see `slow`.
      const naive = await sql<{
        stream_id: string;
      }>`select stream_id from events where position > ${slow.position.toString()}::bigint - 1 order by position`.execute(
        ledger.db,
      );
      expect(naive.rows.map((row) => row.stream_id)).toEqual(['fast']);

      // The gap-safe reader holds back while the older transaction is open...
      const held = await ledger.readAll({ after: cursor });
      expect(held.events).toEqual([]);
      expect(held.next).toEqual(cursor);

      // ...and delivers both, in transaction order, once it commits.
      await slow.commit();
      // Another suite's open transaction on the shared server may hold the horizon a while.
      let caughtUp = await ledger.readAll({ after: held.next });
      for (const deadline = Date.now() + 30_000; caughtUp.events.length < 2;) {
        if (Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
        caughtUp = await ledger.readAll({ after: held.next });
      }
      expect(caughtUp.events.map((e) => e.streamId)).toEqual(['slow', 'fast']);
    } finally {
      await ledger.close();
    }
  });

  it('loses nothing while many writers hold transactions open for random times', async () => {
    const ledger = await postgres.open({ poolSize: 20 });
    try {
      const seen: string[] = [];
      const written: string[] = [];
      let cursor = (await ledger.readAll()).next;
      // Each writer's job is started first; the reader must see those events too.
      const starts = await ledger.appendMany(
        Array.from({ length: 12 }, (_, writer) => ({
          streamId: `w${writer}`,
          events: [started(`w${writer}`)],
        })),
      );
      written.push(...starts.map((result) => result.events[0]!.eventId));
      let writing = true;
      // Once writing stops, the reader reads until it has seen every write, or for 30 s
      // (another suite's open transaction on the shared server may hold the horizon a while).
      let stopBy = Infinity;
      const reader = (async () => {
        for (;;) {
          const stillWriting = writing;
          const page = await ledger.readAll({ after: cursor, limit: 50 });
          seen.push(...page.events.map((e) => e.eventId));
          cursor = page.next;
          const done = seen.length >= written.length || Date.now() > stopBy;
          if (!stillWriting && page.events.length === 0 && done) return;
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      await Promise.all(
        Array.from({ length: 12 }, async (_, writer) => {
          for (let round = 0; round < 8; round += 1) {
            const rollback = (writer + round) % 5 === 0;
            await ledger.db
              .transaction()
              .execute(async (trx) => {
                const [result] = await executeAppend(
                  trx,
                  prepareStreams(
                    [{ streamId: `w${writer}`, events: [event(`${writer}-${round}`)] }],
                    new Date(),
                  ),
                );
                await new Promise((resolve) =>
                  setTimeout(resolve, ((writer * 7 + round * 13) % 20) + 1),
                );
                if (rollback) throw new Error('rolled back on purpose');
                written.push(result!.events[0]!.eventId);
              })
              .catch((error: Error) => {
                if (error.message !== 'rolled back on purpose') throw error;
              });
          }
        }),
      );
      stopBy = Date.now() + 30_000;
      writing = false;
      await reader;
      expect(seen.length).toBe(written.length);
      expect(new Set(seen)).toEqual(new Set(written));
    } finally {
      await ledger.close();
    }
  });

  it('lets several processes open and migrate the same schema at once', async () => {
    const schema = `hw_test_concurrent_${Date.now()}`;
    const ledgers = await Promise.all(Array.from({ length: 4 }, () => postgres.open({ schema })));
    try {
      await ledgers[0]!.append('job', [started('job')]);
      expect(await ledgers[3]!.streamVersion('job')).toBe(1);
    } finally {
      await Promise.all(ledgers.map((ledger) => ledger.close()));
    }
  });
});
