import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { ConcurrencyError, IdempotencyConflictError, InvalidEventError } from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { jobProgress } from '../projections/job-progress.ts';
import { combineProjections } from '../projections/combine.ts';
import { jobItems } from '../projections/job-items.ts';
import { fold } from '../projections/projection.ts';
import type { Projection } from '../projections/projection.ts';
import { deepFreeze } from './arbitraries.ts';
import { storesUnderTest } from './stores.ts';

const started = (name = 'crawl'): EventInput => ({
  type: 'job.started',
  data: { name, kind: 'crawl', project: 'web' },
});
const completed = (itemId: string, eventId?: string): EventInput => ({
  type: 'item.completed',
  data: { itemId, durationMs: 10 },
  ...(eventId ? { eventId } : {}),
});
const items = (count: number, prefix = 'i'): EventInput[] =>
  Array.from({ length: count }, (_, index) => completed(`${prefix}${index}`));

/**
 * The whole log through the gap-safe reader, once it shows every committed row: on a
 * shared server another suite's open transaction holds the horizon back for a while.
 */
async function allEvents(ledger: Ledger) {
  const { rows } = await ledger.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<string>().as('rows'))
    .executeTakeFirstOrThrow();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const events = [];
    for await (const page of ledger.readAllBatches({ limit: 50 })) events.push(...page.events);
    if (events.length >= Number(rows) || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`store contract: ${store.name}`, () => {
    let ledger: Ledger;
    beforeEach(async () => {
      ledger = await store.open();
    });
    afterEach(async () => {
      await ledger.close();
    });
    afterAll(async () => {
      await store.cleanup();
    });

    describe('append', () => {
      it('assigns versions from 1 and increasing positions, and reads them back', async () => {
        const before = Date.now();
        const first = await ledger.append('job-1', [started(), ...items(2)]);
        const after = Date.now();
        expect(first.nextExpectedVersion).toBe(3);
        expect(first.events.map((event) => event.version)).toEqual([1, 2, 3]);
        const positions = first.events.map((event) => event.position);
        expect(positions[1]! > positions[0]! && positions[2]! > positions[1]!).toBe(true);

        const stream = await ledger.readStream('job-1');
        expect(stream.map((event) => [event.type, event.version, event.position])).toEqual([
          ['job.started', 1, positions[0]],
          ['item.completed', 2, positions[1]],
          ['item.completed', 3, positions[2]],
        ]);
        expect(stream[1]!.data).toEqual({ itemId: 'i0', durationMs: 10 });
        // The database clock, read back to the millisecond.
        expect(stream[0]!.recordedAt.getTime()).toBeGreaterThanOrEqual(before - 1_000);
        expect(stream[0]!.recordedAt.getTime()).toBeLessThanOrEqual(after + 1_000);
        expect(Number.isInteger(stream[0]!.recordedAt.getTime())).toBe(true);
        expect(stream[0]!.transactionId).toBeTypeOf('bigint');
        expect(await ledger.streamVersion('job-1')).toBe(3);
        expect(await ledger.streamVersion('nope')).toBe(0);
      });

      it('stores text outside the basic plane, quotes and backslashes as given', async () => {
        const itemId = 'emoji 😀 "quoted" \\ back\\slash \\ud800 \\u0000 tab\t';
        await ledger.append('job-1', [started(), completed(itemId)]);
        const [, event] = await ledger.readStream('job-1');
        expect(event!.data).toEqual({ itemId, durationMs: 10 });
      });

      it('keeps producer ids, clocks and metadata', async () => {
        const eventId = randomUUID();
        await ledger.append('job-1', [
          started(),
          {
            ...completed('a', eventId),
            occurredAt: '2026-01-02T03:04:05.678Z',
            metadata: { actor: 'crawler-7', correlationId: 'c-1' },
          },
        ]);
        const [, event] = await ledger.readStream('job-1');
        expect(event!.eventId).toBe(eventId);
        expect(event!.occurredAt.toISOString()).toBe('2026-01-02T03:04:05.678Z');
        expect(event!.metadata).toEqual({ actor: 'crawler-7', correlationId: 'c-1' });
      });

      it('honours no_stream, stream_exists, exact versions and any', async () => {
        await expect(
          ledger.append('job-1', items(1), { expectedVersion: 'stream_exists' }),
        ).rejects.toMatchObject({ code: 'concurrency', expected: 'stream_exists', actual: 0 });
        await ledger.append('job-1', [started()], { expectedVersion: 'no_stream' });
        await expect(
          ledger.append('job-1', [started()], { expectedVersion: 'no_stream' }),
        ).rejects.toMatchObject({ code: 'concurrency', expected: 'no_stream', actual: 1 });
        await ledger.append('job-1', items(1), { expectedVersion: 'stream_exists' });
        await ledger.append('job-1', items(1, 'b'), { expectedVersion: 2 });
        const error = await ledger
          .append('job-1', items(1, 'c'), { expectedVersion: 2 })
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(ConcurrencyError);
        expect(error).toMatchObject({ streamId: 'job-1', expected: 2, actual: 3 });
        expect((error as Error).message).toMatchInlineSnapshot(
          `"Stream 'job-1': expected version 2, but its version is 3"`,
        );
        await ledger.append('job-1', items(1, 'd'), { expectedVersion: 'any' });
        expect(await ledger.streamVersion('job-1')).toBe(4);
      });

      it('lets exactly one of many racing no_stream appends win', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 8 }, () =>
            ledger.append('job-race', [started()], { expectedVersion: 'no_stream' }),
          ),
        );
        expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ConcurrencyError);
        }
        expect(await ledger.readStream('job-race')).toHaveLength(1);
      });

      it('treats a retry with the same event ids as done: original positions, nothing written', async () => {
        const batch = [started(), ...items(3)].map((event) => ({
          ...event,
          eventId: randomUUID(),
        }));
        const first = await ledger.append('job-1', batch, { expectedVersion: 'no_stream' });
        await ledger.append('job-1', items(1, 'later'));
        for (const expectedVersion of ['no_stream', 'any', 0] as const) {
          const retry = await ledger.append('job-1', batch, { expectedVersion });
          expect(retry).toEqual(first);
        }
        expect(await ledger.streamVersion('job-1')).toBe(5);
        expect(await allEvents(ledger)).toHaveLength(5);
      });

      it('answers racing copies of one batch alike: one write, the same positions', async () => {
        await ledger.append('job-1', [started()]);
        const batch = items(50).map((event) => ({ ...event, eventId: randomUUID() }));
        const results = await Promise.all(
          Array.from({ length: 6 }, () => ledger.append('job-1', batch)),
        );
        for (const result of results) expect(result).toEqual(results[0]);
        expect(results[0]!.events.map((event) => event.version)).toEqual(
          Array.from({ length: 50 }, (_, index) => index + 2),
        );
        expect(await ledger.streamVersion('job-1')).toBe(51);
        expect(await allEvents(ledger)).toHaveLength(51);
      });

      it('takes event ids in either case as one id', async () => {
        const id = randomUUID().toUpperCase();
        await ledger.append('job-1', [started()]);
        const first = await ledger.append('job-1', [completed('a', id)]);
        expect(first.events[0]!.eventId).toBe(id.toLowerCase());
        expect(await ledger.append('job-1', [completed('a', id.toLowerCase())])).toEqual(first);
        await expect(
          ledger.append('job-2', [completed('a', id), completed('b', id.toLowerCase())]),
        ).rejects.toMatchObject({ code: 'invalid_event' });
        expect(await allEvents(ledger)).toHaveLength(2);
      });

      it('rejects a batch that half overlaps an earlier one, and writes none of it', async () => {
        const old = randomUUID();
        await ledger.append('job-1', [started(), completed('a', old), completed('b')]);
        const error = await ledger
          .append('job-1', [completed('a', old), completed('c')])
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(IdempotencyConflictError);
        expect(error).toMatchObject({
          code: 'idempotency_conflict',
          repeated: 1,
          events: 2,
          eventIds: [old],
        });
        const wrongStream = await ledger
          .append('job-2', [started('two'), completed('a', old)])
          .catch((caught: unknown) => caught);
        expect(wrongStream).toMatchObject({ code: 'idempotency_conflict' });
        expect((await allEvents(ledger)).map((event) => event.version)).toEqual([1, 2, 3]);
        expect(await ledger.streamVersion('job-2')).toBe(0);
      });

      it('refuses a reused event id with other content, naming it, and writes nothing', async () => {
        const ids = [randomUUID(), randomUUID()];
        const batch: EventInput[] = [
          { ...started(), eventId: ids[0]! },
          { ...completed('a', ids[1]), metadata: { actor: 'crawler-1' } },
        ];
        const first = await ledger.append('job-1', batch, { expectedVersion: 'no_stream' });
        // The same content, keys in another order and a later clock: a retry, nothing written.
        const reordered: EventInput[] = [
          { ...batch[0]!, occurredAt: '2030-01-01T00:00:00.000Z' },
          {
            type: 'item.completed',
            eventId: ids[1]!,
            metadata: { actor: 'crawler-1' },
            data: { durationMs: 10, itemId: 'a' },
          },
        ];
        expect(await ledger.append('job-1', reordered)).toEqual(first);
        expect(await ledger.append('job-1', reordered, { expectedVersion: 'no_stream' })).toEqual(
          first,
        );
        const before = await allEvents(ledger);

        const changes: [string, EventInput[], string[]][] = [
          [
            'data',
            [batch[0]!, { ...batch[1]!, data: { itemId: 'b', durationMs: 10 } } as EventInput],
            ['data'],
          ],
          [
            'type',
            [batch[0]!, { ...batch[1]!, type: 'item.skipped', data: { itemId: 'a' } }],
            ['type', 'data'],
          ],
          [
            'metadata',
            [batch[0]!, { ...batch[1]!, metadata: { actor: 'crawler-2' } }],
            ['metadata'],
          ],
        ];
        for (const [what, changed, fields] of changes) {
          for (const expectedVersion of ['any', 'no_stream'] as const) {
            const error = await ledger
              .append('job-1', changed, { expectedVersion })
              .catch((caught: unknown) => caught);
            expect(error, `${what}, ${expectedVersion}`).toBeInstanceOf(IdempotencyConflictError);
            expect(error).toMatchObject({
              code: 'idempotency_conflict',
              streamId: 'job-1',
              eventIds: [ids[1]],
              fields,
            });
            expect((error as Error).message).toContain(ids[1]);
          }
        }
        expect(await allEvents(ledger)).toEqual(before);
        expect(await ledger.streamVersion('job-1')).toBe(2);
        // The stream takes new events as before.
        expect((await ledger.append('job-1', items(1, 'new'))).nextExpectedVersion).toBe(3);
      });

      it('refuses a conflicting retry in appendMany by its stream, writing no stream', async () => {
        const id = '0b7a3c1e-5d4f-4e2a-9b8c-7d6e5f4a3b2c';
        await ledger.append('a', [started('a'), completed('x', id)]);
        const error = await ledger
          .appendMany([
            { streamId: 'b', events: [started('b')] },
            { streamId: 'a', events: [completed('y', id)] },
          ])
          .catch((caught: unknown) => caught);
        expect(error).toMatchObject({
          code: 'idempotency_conflict',
          streamId: 'a',
          eventIds: [id],
          fields: ['data'],
        });
        expect((error as Error).message).toMatchInlineSnapshot(
          `"Stream 'a': event id 0b7a3c1e-5d4f-4e2a-9b8c-7d6e5f4a3b2c was appended before with other data; a retry must repeat its events unchanged, and a new event needs a new id"`,
        );
        expect(await ledger.streamVersion('b')).toBe(0);
        expect(await allEvents(ledger)).toHaveLength(2);
      });

      it('rejects duplicate ids inside one batch before writing', async () => {
        const id = randomUUID();
        await expect(
          ledger.append('job-1', [completed('a', id), completed('b', id)]),
        ).rejects.toMatchObject({ code: 'invalid_event' });
      });
    });

    describe('appendMany', () => {
      it('writes several streams in one transaction', async () => {
        const results = await ledger.appendMany([
          { streamId: 'a', events: [started('a'), ...items(2)], expectedVersion: 'no_stream' },
          { streamId: 'b', events: [started('b')], expectedVersion: 'no_stream' },
        ]);
        expect(results.map((result) => [result.streamId, result.nextExpectedVersion])).toEqual([
          ['a', 3],
          ['b', 1],
        ]);
        const transactionIds = new Set(
          (await allEvents(ledger)).map((event) => event.transactionId),
        );
        expect(transactionIds.size).toBe(1);
      });

      it('writes nothing when one stream conflicts', async () => {
        await ledger.append('b', [started('b')]);
        await expect(
          ledger.appendMany([
            { streamId: 'a', events: [started('a')], expectedVersion: 'no_stream' },
            { streamId: 'b', events: items(1), expectedVersion: 5 },
          ]),
        ).rejects.toMatchObject({ code: 'concurrency', streamId: 'b', expected: 5, actual: 1 });
        expect(await ledger.streamVersion('a')).toBe(0);
        expect(await allEvents(ledger)).toHaveLength(1);
      });

      it('writes nothing when one stream holds an invalid event', async () => {
        const error = await ledger
          .appendMany([
            { streamId: 'a', events: [started('a')] },
            { streamId: 'b', events: [{ type: 'item.completed', data: { itemId: 42 } }] },
          ] as never)
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(InvalidEventError);
        expect((error as InvalidEventError).issues[0]!.path).toBe(
          'streams[1].events[0].data.itemId',
        );
        expect(await allEvents(ledger)).toHaveLength(0);
      });

      it('rejects the same stream twice', async () => {
        await expect(
          ledger.appendMany([
            { streamId: 'a', events: items(1) },
            { streamId: 'a', events: items(1, 'x') },
          ]),
        ).rejects.toMatchObject({ code: 'invalid_input' });
      });
    });

    describe('reading', () => {
      it('reads a stream from a version with a limit', async () => {
        await ledger.append('job-1', [started(), ...items(9)]);
        const page = await ledger.readStream('job-1', { fromVersion: 4, limit: 3 });
        expect(page.map((event) => event.version)).toEqual([4, 5, 6]);
        await expect(ledger.readStream('job-1', { fromVersion: 0 })).rejects.toMatchObject({
          code: 'invalid_input',
        });
      });

      it('pages the whole log with the cursor, filtered by type and stream', async () => {
        await ledger.append('a', [started('a'), ...items(5)]);
        await ledger.append('b', [started('b'), ...items(5)]);
        await ledger.append('a', items(2, 'more'));
        const all = await allEvents(ledger);
        expect(all).toHaveLength(14);
        expect(new Set(all.map((event) => event.eventId)).size).toBe(14);

        const firstPage = await ledger.readAll({ limit: 4 });
        const rest = await ledger.readAll({ after: firstPage.next });
        expect([...firstPage.events, ...rest.events].map((event) => event.eventId)).toEqual(
          all.map((event) => event.eventId),
        );
        const asText = `${firstPage.next.transactionId}:${firstPage.next.position}`;
        expect((await ledger.readAll({ after: asText })).events).toEqual(rest.events);

        const startedOnly = await ledger.readAll({ types: ['job.started'] });
        expect(startedOnly.events.map((event) => event.streamId)).toEqual(['a', 'b']);
        const onlyB = await ledger.readAll({ streamIds: ['b'] });
        expect(onlyB.events).toHaveLength(6);
      });

      it('folds and pages a job longer than one read page', async () => {
        const total = 23_456;
        await ledger.append('long', [started('long'), ...items(9_999)]);
        await ledger.append('long', items(10_000, 'b'));
        await ledger.append('long', items(total - 20_000, 'c'));
        await ledger.append('other', [started('other'), ...items(3)]);
        const progress = await ledger.project('long', jobProgress);
        expect([progress.version, progress.counts.completed]).toEqual([total, total - 1]);

        const page = await ledger.readStream('long', { fromVersion: 9_998, limit: 5 });
        expect(page.map((event) => event.version)).toEqual([9_998, 9_999, 10_000, 10_001, 10_002]);
        const pages = [];
        for await (const batch of ledger.readAllBatches({ streamIds: ['long'] })) {
          pages.push(batch.events.map((event) => event.version));
        }
        expect(pages.map((versions) => versions.length)).toEqual([10_000, 10_000, 3_456]);
        expect(pages.flat()).toEqual(Array.from({ length: total }, (_, index) => index + 1));
      });

      it('folds a job read again from where its last read ended', async () => {
        let steps = 0;
        const counted: Projection<number> = {
          name: 'counted',
          version: 1,
          initial: () => 0,
          evolve: (count) => {
            steps += 1;
            return count + 1;
          },
        };
        await ledger.append('job-f', [started(), ...items(2)]);
        expect(await ledger.project('job-f', counted)).toBe(3);
        expect(await ledger.project('job-f', counted)).toBe(3);
        await ledger.append('job-f', items(2, 'more'));
        expect(await ledger.project('job-f', counted)).toBe(5);
        // 3 events, none, then the 2 new ones: each folded once.
        expect(steps).toBe(5);
        // Another projection, another fold, from the start.
        expect(await ledger.project('job-f', jobProgress)).toMatchObject({ version: 5 });
      });

      it('continues cached folds of item tables to what folding everything gives', async () => {
        const both = combineProjections({ progress: jobProgress, items: jobItems });
        const job = ledger.job('job-g');
        await job.start({ name: 'g', kind: 'k', project: 'p' });
        for (let round = 0; round < 4; round += 1) {
          await job.plan(Array.from({ length: 30 }, (_, index) => `r${round}-${index}`));
          for (let index = 0; index < 30; index += 1) {
            const itemId = `r${round}-${index}`;
            await job.record([
              { type: 'item.started', data: { itemId } },
              index % 5 === 0
                ? { type: 'item.failed', data: { itemId, error: { message: 'x' } } }
                : { type: 'item.completed', data: { itemId } },
            ]);
          }
          // Each read goes on from the one before; each must equal the whole fold.
          const stream = await ledger.readStream('job-g');
          const cachedItems = deepFreeze(await ledger.project('job-g', jobItems));
          const cachedBoth = deepFreeze(await ledger.project('job-g', both));
          expect(cachedItems).toEqual(fold(jobItems, stream));
          expect(cachedBoth).toEqual(fold(both, stream));
        }
      });

      it('reads past missing versions, should a stream ever have them', async () => {
        // Appends never leave gaps; rows written around the API can, and retention may.
        for (const version of [1, 2, 10_005, 10_006]) {
          await sql`insert into events (stream_id, version, event_id, type, schema_version, data, occurred_at)
                    values ('gappy', ${version}, ${randomUUID()}::uuid, 'item.completed', 1,
                            ${JSON.stringify({ itemId: `i${version}` })}::jsonb, now())`.execute(
            ledger.db,
          );
        }
        const versions = async (fromVersion: number, limit: number) =>
          (await ledger.readStream('gappy', { fromVersion, limit })).map((event) => event.version);
        expect(await versions(1, 10_000)).toEqual([1, 2, 10_005, 10_006]);
        expect(await versions(2, 2)).toEqual([2, 10_005]);
        expect((await ledger.project('gappy', jobProgress)).counts.completed).toBe(4);
      });

      it('returns the same cursor when nothing is new', async () => {
        await ledger.append('a', [started('a'), ...items(1)]);
        const { next } = await ledger.readAll();
        const again = await ledger.readAll({ after: next });
        expect(again.events).toEqual([]);
        expect(again.next).toEqual(next);
      });

      it('rejects a malformed cursor clearly', async () => {
        await expect(
          ledger.readAll({ after: 'yesterday' }),
        ).rejects.toThrowErrorMatchingInlineSnapshot(
          `[InvalidInputError: after: expected a cursor "<transactionId>:<position>" such as "812:1044", with a transaction id below 2^64 and a position below 2^63, received "yesterday"]`,
        );
      });

      it('upcasts events written by an older schema version on read', async () => {
        const upcasting = await store.open({
          upcasters: [
            {
              type: 'item.completed',
              fromVersion: 0,
              upcast: (data) => ({ itemId: (data as { item: string }).item }),
            },
          ],
        });
        try {
          // A row as an older release would have written it.
          await upcasting.db
            .insertInto('events')
            .values({
              stream_id: 'old',
              version: 1,
              event_id: randomUUID(),
              type: 'item.completed',
              schema_version: 0,
              data: JSON.stringify({ item: 'legacy-1' }),
              metadata: '{}',
              occurred_at: new Date('2025-01-01T00:00:00Z'),
            })
            .execute();
          const [event] = await upcasting.readStream('old');
          expect(event!.schemaVersion).toBe(1);
          expect(event!.data).toEqual({ itemId: 'legacy-1' });
        } finally {
          await upcasting.close();
        }
      });
    });

    describe('timeline', () => {
      it('filters by job, type, time and text, and pages both ways', async () => {
        const job = ledger.job('job-t');
        await job.start({ name: 'crawl', kind: 'crawl', project: 'web' });
        await job.log('info', 'fetching sitemap', undefined, {
          occurredAt: '2026-01-01T00:00:00Z',
        });
        await job.itemFailed(
          'p1',
          Object.assign(new Error('connect ECONNRESET 10.0.0.1'), { code: 'ECONNRESET' }),
        );
        await job.log('warn', 'Sitemap is stale', undefined, {
          occurredAt: '2026-01-03T00:00:00Z',
        });
        await ledger.append('other', [started('other')]);

        const logs = await ledger.timeline({ jobId: 'job-t', types: ['log.written'] });
        expect(logs.events.map((event) => event.data)).toMatchObject([
          { message: 'fetching sitemap' },
          { message: 'Sitemap is stale' },
        ]);
        const text = await ledger.timeline({ text: 'SITEMAP' });
        expect(text.events).toHaveLength(2);
        const errors = await ledger.timeline({ text: 'econnreset' });
        expect(errors.events.map((event) => event.type)).toEqual(['item.failed']);
        const ranged = await ledger.timeline({
          types: ['log.written'],
          since: '2026-01-02T00:00:00Z',
          until: new Date('2026-01-04T00:00:00Z'),
        });
        expect(ranged.events).toHaveLength(1);

        const newest = await ledger.timeline({ limit: 2, order: 'desc' });
        expect(newest.events.map((event) => event.streamId)).toEqual(['other', 'job-t']);
        const older = await ledger.timeline({
          limit: 2,
          order: 'desc',
          cursor: newest.nextCursor!,
        });
        expect(older.events.map((event) => event.type)).toEqual(['item.failed', 'log.written']);
        const last = await ledger.timeline({ limit: 2, order: 'desc', cursor: older.nextCursor! });
        expect(last.events).toHaveLength(1);
        expect(last.nextCursor).toBeNull();
        await expect(ledger.timeline({ limit: 0 })).rejects.toMatchObject({
          code: 'invalid_input',
        });
      });

      it('matches custom types by prefix and log lines by level, in the query', async () => {
        await ledger.append('job-x', [
          started(),
          { type: 'x.deploy', data: { to: 'eu' } },
          { type: 'x.deploy_done', data: {} },
          // A literal underscore or percent in a prefix matches only itself.
          { type: 'x._private', data: {} },
          { type: 'log.written', data: { level: 'warn', message: 'slow' } },
          { type: 'log.written', data: { level: 'info', message: 'fine' } },
          { type: 'log.written', data: { level: 'warn', message: 'slower' } },
        ]);
        const custom = await ledger.timeline({ jobId: 'job-x', types: ['x.*'] });
        expect(custom.events.map((event) => event.type)).toEqual([
          'x.deploy',
          'x.deploy_done',
          'x._private',
        ]);
        const mixed = await ledger.timeline({ jobId: 'job-x', types: ['x._*', 'job.started'] });
        expect(mixed.events.map((event) => event.type)).toEqual(['job.started', 'x._private']);
        const warnings = await ledger.timeline({ jobId: 'job-x', level: 'warn', limit: 1 });
        expect(warnings.events.map((event) => event.data)).toEqual([
          { level: 'warn', message: 'slow' },
        ]);
        const next = await ledger.timeline({
          jobId: 'job-x',
          level: 'warn',
          cursor: warnings.nextCursor!,
        });
        expect(next.events.map((event) => event.data)).toEqual([
          { level: 'warn', message: 'slower' },
        ]);
        expect(next.nextCursor).toBeNull();
      });

      it("pages one job among others by its own events, from any cursor, like the log's order", async () => {
        // Two jobs appended in turns, so each job's positions have the other's between them.
        await ledger.append('weave-a', [started('weave-a')]);
        await ledger.append('weave-b', [started('weave-b')]);
        for (let round = 0; round < 6; round += 1) {
          for (const jobId of ['weave-a', 'weave-b']) {
            await ledger.append(jobId, [
              { type: 'log.written', data: { level: 'info', message: `${jobId} ${round}` } },
            ]);
          }
        }
        const log = (await ledger.timeline({ limit: 1_000 })).events.filter((event) =>
          event.streamId.startsWith('weave-'),
        );
        const positionsOf = (jobId: string) =>
          log.filter((event) => event.streamId === jobId).map((event) => event.position);
        for (const order of ['asc', 'desc'] as const) {
          const expected = positionsOf('weave-a');
          if (order === 'desc') expected.reverse();
          const paged: bigint[] = [];
          let cursor: string | undefined;
          do {
            const page = await ledger.timeline({ jobId: 'weave-a', limit: 3, order, cursor });
            paged.push(...page.events.map((event) => event.position));
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          expect(paged).toEqual(expected);

          // A cursor may be any position: another job's, or one past either end.
          const cursors = [...positionsOf('weave-b'), 0n, log.at(-1)!.position + 100n];
          for (const from of cursors) {
            const page = await ledger.timeline({
              jobId: 'weave-a',
              limit: 1_000,
              order,
              cursor: String(from),
            });
            const after = expected.filter((position) =>
              order === 'asc' ? position > from : position < from,
            );
            expect(page.events.map((event) => event.position)).toEqual(after);
          }
        }
      });
    });

    describe('jobs', () => {
      it('lists jobs newest first with their status', async () => {
        const first = ledger.job('first');
        await first.start({ name: 'one', kind: 'crawl', project: 'web' });
        await first.complete();
        // Newest first is by the last event's time: two jobs a few ms apart never tie.
        await new Promise((resolve) => setTimeout(resolve, 5));
        const second = ledger.job('second');
        await second.start({ name: 'two', kind: 'index', project: 'search' });
        await second.pause('maintenance');
        const jobs = await ledger.jobs();
        expect(
          jobs.map(({ jobId, progress }) => [
            jobId,
            progress.name,
            progress.status,
            progress.version,
          ]),
        ).toEqual([
          ['second', 'two', 'paused', 2],
          ['first', 'one', 'completed', 2],
        ]);
        expect((await ledger.jobs({ project: 'web' })).map((job) => job.jobId)).toEqual(['first']);
      });
    });

    describe('recording', () => {
      it('splits a large plan into events under the size caps, all in one append', async () => {
        const job = ledger.job('big');
        await job.start({ name: 'big', kind: 'ingest', project: 'data' });
        const ids = Array.from(
          { length: 5_000 },
          (_, index) => `${'s3://bucket/'.padEnd(60, 'x')}/${index}`,
        );
        const result = await job.plan(ids);
        expect(result.events.length).toBeGreaterThan(2);
        const progress = await ledger.project('big', jobProgress);
        expect(progress.counts.planned).toBe(5_000);
        expect(progress.total).toBe(5_000);
      });
    });

    describe('immutability', () => {
      it('rejects UPDATE, DELETE and TRUNCATE on events and keeps the rows', async () => {
        await ledger.append('job-1', [started(), ...items(2)]);
        const before = await allEvents(ledger);
        await expect(sql`update events set type = 'x.changed'`.execute(ledger.db)).rejects.toThrow(
          /events are immutable: UPDATE/,
        );
        await expect(sql`delete from events`.execute(ledger.db)).rejects.toThrow(
          /events are immutable: DELETE/,
        );
        await expect(sql`truncate events`.execute(ledger.db)).rejects.toThrow(
          /events are immutable: TRUNCATE/,
        );
        expect(await allEvents(ledger)).toEqual(before);
      });

      it('keeps stream heads on the log: a wrong version, DELETE and TRUNCATE are refused', async () => {
        await ledger.append('job-1', [started(), ...items(1)]);
        const refused = async (statement: ReturnType<typeof sql>) =>
          (await statement.execute(ledger.db).catch((caught: unknown) => caught)) as {
            code?: string;
            message?: string;
          };
        expect(await refused(sql`update streams set version = 3`)).toMatchObject({
          code: 'HW004',
          message:
            'stream heads follow the log: stream job-1 has events up to version 2, so its head must be 2, received 3',
        });
        expect(
          await refused(sql`insert into streams (stream_id, version) values ('job-9', 4)`),
        ).toMatchObject({ code: 'HW004' });
        expect(await refused(sql`update streams set stream_id = 'job-2'`)).toMatchObject({
          code: 'HW004',
        });
        expect(await refused(sql`delete from streams`)).toMatchObject({
          code: 'HW003',
          message: 'stream heads follow the log: DELETE on streams is not allowed',
        });
        expect(await refused(sql`truncate streams`)).toMatchObject({ code: 'HW003' });
        // A head that matches the log may be written (nothing changes), and the job goes on.
        await sql`update streams set version = 2`.execute(ledger.db);
        const next = await ledger.append('job-1', items(1, 'after'), { expectedVersion: 2 });
        expect(next.nextExpectedVersion).toBe(3);
        expect(await ledger.streamVersion('job-1')).toBe(3);
        expect(await ledger.streamVersion('job-9')).toBe(0);
      });
    });
  });
}
