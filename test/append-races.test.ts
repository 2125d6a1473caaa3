import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { storesUnderTest } from './stores.ts';

const postgres = storesUnderTest().find((store) => store.name === 'postgres')!;
const completed = (itemId: string): EventInput => ({
  type: 'item.completed',
  data: { itemId },
  eventId: randomUUID(),
});

// PGlite runs one transaction at a time, so only a server can interleave them.
describe.skipIf(!postgres.available)('racing appends on PostgreSQL', () => {
  afterAll(() => postgres.cleanup());

  it('answers copies of one batch that wait on each other alike: one write, same positions', async () => {
    // Counted by name as well as database: only this ledger's own sessions.
    const applicationName = `hw-races-${randomUUID().slice(0, 8)}`;
    const ledger = await postgres.open({ applicationName });
    try {
      await ledger.append('job', [
        { type: 'job.started', data: { name: 'j', kind: 'k', project: 'p' } },
      ]);
      const batch = Array.from({ length: 20 }, (_, index) => completed(`i${index}`));

      // Hold the stream's head so every copy has looked for its ids, and found none,
      // before the first of them is written: the later ones find them only on insert.
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const holding = new Promise<void>((resolve) => (locked = resolve));
      const holder = ledger.db.transaction().execute(async (trx) => {
        await sql`select 1 from streams where stream_id = 'job' for update`.execute(trx);
        locked();
        await gate;
      });
      await holding;
      const copies = Array.from({ length: 5 }, () => ledger.append('job', batch));
      for (let waited = 0; ; waited += 50) {
        const { rows } = await sql<{ waiting: number }>`
          select count(*)::int as waiting from pg_stat_activity
           where datname = current_database() and application_name = ${applicationName}
             and wait_event_type = 'Lock'`.execute(ledger.db);
        if (rows[0]!.waiting === copies.length) break;
        if (waited > 20_000) throw new Error(`only ${rows[0]!.waiting} copies are waiting`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      release();
      await holder;

      const results = await Promise.all(copies);
      for (const result of results) expect(result).toEqual(results[0]);
      expect(results[0]!.events.map((event) => event.version)).toEqual(
        Array.from({ length: 20 }, (_, index) => index + 2),
      );
      expect(await ledger.streamVersion('job')).toBe(21);
      expect(await ledger.readStream('job')).toHaveLength(21);
    } finally {
      await ledger.close();
    }
  });
});
