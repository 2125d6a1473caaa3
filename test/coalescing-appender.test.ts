import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { AppendResult } from '../src/append/prepare-streams.ts';
import { CoalescingAppender } from '../src/append/coalescing-appender.ts';
import {
  AppenderClosedError,
  ConcurrencyError,
  DatabaseUnavailableError,
  HeadwayError,
  IdempotencyConflictError,
  InvalidEventError,
  InvalidInputError,
  type ExpectedVersion,
} from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import pg from 'pg';
import { postgresAvailable, postgresUrl, storesUnderTest } from './stores.ts';

type Uuid = ReturnType<typeof randomUUID>;

/** A job's first event: a stream with no events takes nothing else first. */
const started = (jobId: string, eventId: Uuid = randomUUID()): EventInput => ({
  type: 'job.started',
  data: { name: jobId, kind: 'test', project: 'coalescing' },
  eventId,
});
const completed = (itemId: string, eventId: Uuid = randomUUID()): EventInput => ({
  type: 'item.completed',
  data: { itemId, durationMs: 10 },
  eventId,
});
const items = (count: number, prefix: string): EventInput[] =>
  Array.from({ length: count }, (_, index) => completed(`${prefix}-${index}`));

/**
 * The whole log through the gap-safe reader, once it shows every committed row: on a
 * shared server any other open transaction (even in another database) holds it back.
 */
async function allEvents(ledger: Ledger): Promise<RecordedEvent[]> {
  const { rows } = await ledger.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<string>().as('rows'))
    .executeTakeFirstOrThrow();
  for (;;) {
    const events: RecordedEvent[] = [];
    for await (const page of ledger.readAllBatches()) events.push(...page.events);
    if (events.length >= Number(rows)) return events;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Settles now, so a rejection that comes before the test looks at it is not unhandled. */
const settle = <T>(promise: Promise<T>): Promise<PromiseSettledResult<T>> =>
  promise.then(
    (value) => ({ status: 'fulfilled', value }),
    (reason: unknown) => ({ status: 'rejected', reason }),
  );

/** Lets pending I/O run, so later calls arrive while a write is in flight. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`coalescing appender: ${store.name}`, () => {
    let ledger: Ledger;
    let appender: CoalescingAppender;
    beforeEach(async () => {
      ledger = await store.open();
      appender = new CoalescingAppender(ledger);
    });
    afterEach(async () => {
      await appender.close();
      await ledger.close();
    });
    afterAll(async () => {
      await store.cleanup();
    });

    it('gives each of many concurrent callers its own result, in fewer transactions than calls', async () => {
      const producers = 64;
      const rounds = 5;
      const sharedCallers = 8;
      const produce = async (producer: number) => {
        const streamId = `job-${producer}`;
        const results: AppendResult[] = [];
        for (let round = 0; round < rounds; round++) {
          const events = [
            ...(round === 0 ? [started(streamId)] : []),
            ...items(1 + (round % 3), `${producer}-${round}`),
          ];
          const result = await appender.append(streamId, events, {
            expectedVersion: round === 0 ? 'no_stream' : results.at(-1)!.nextExpectedVersion,
          });
          expect(result.streamId).toBe(streamId);
          expect(result.events.map((event) => event.eventId)).toEqual(
            events.map((event) => event.eventId),
          );
          results.push(result);
        }
        return results;
      };
      const sharedStart = started('shared');
      await ledger.append('shared', [sharedStart]);
      const sharedBatches = Array.from({ length: sharedCallers }, (_, caller) =>
        items(2, `shared-${caller}`),
      );
      const [perProducer, shared] = await Promise.all([
        Promise.all(Array.from({ length: producers }, (_, producer) => produce(producer))),
        Promise.all(sharedBatches.map((events) => appender.append('shared', events))),
      ]);

      // Each caller's versions follow the calls before it on its stream.
      for (const results of perProducer) {
        let head = 0;
        for (const result of results) {
          expect(result.events.map((event) => event.version)).toEqual(
            result.events.map((_, index) => head + index + 1),
          );
          head = result.nextExpectedVersion;
        }
      }
      expect(shared.map((result) => result.events.map((event) => event.version))).toEqual(
        sharedBatches.map((_, caller) => [2 * caller + 2, 2 * caller + 3]),
      );

      // Every result names the row that holds its event, and nothing was written twice.
      const stored = await allEvents(ledger);
      const calls = producers * rounds + sharedCallers;
      const results = [...perProducer.flat(), ...shared];
      const returned = results.flatMap((result) => result.events);
      // …and the shared stream's start, appended before.
      expect(stored).toHaveLength(returned.length + 1);
      expect(new Set(stored.map((event) => event.eventId)).size).toBe(stored.length);
      const byId = new Map(stored.map((event) => [event.eventId, event]));
      for (const result of results) {
        for (const event of result.events) {
          expect(byId.get(event.eventId)).toMatchObject({
            streamId: result.streamId,
            position: event.position,
            version: event.version,
          });
        }
      }
      expect(new Set(stored.map((event) => event.transactionId)).size).toBeLessThan(calls);

      // The shared stream holds its callers' events in call order.
      const sharedStream = await ledger.readStream('shared');
      expect(sharedStream.map((event) => event.eventId)).toEqual(
        [sharedStart, ...sharedBatches.flat()].map((event) => event.eventId),
      );
    });

    it('writes calls made in the same tick on different streams in one transaction', async () => {
      await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          appender.append(`s-${index}`, [started(`s-${index}`), ...items(2, 'x')]),
        ),
      );
      const stored = await allEvents(ledger);
      expect(stored).toHaveLength(30);
      expect(new Set(stored.map((event) => event.transactionId)).size).toBe(1);
    });

    it('keeps every statement within maxStreams and maxEvents', async () => {
      const bounded = new CoalescingAppender(ledger, { maxStreams: 4, maxEvents: 5 });
      // The first call to each stream starts its job.
      const calls = Array.from({ length: 24 }, (_, index) =>
        bounded.append(`b-${index % 12}`, [
          ...(index < 12 ? [started(`b-${index}`)] : []),
          ...items(1 + (index % 2), `b${index}`),
        ]),
      );
      // One call larger than maxEvents still goes through, alone.
      calls.push(bounded.append('big', [started('big'), ...items(7, 'big')]));
      await Promise.all(calls);
      await bounded.close();
      const byTransaction = new Map<bigint, RecordedEvent[]>();
      for (const event of await allEvents(ledger)) {
        byTransaction.set(event.transactionId, [
          ...(byTransaction.get(event.transactionId) ?? []),
          event,
        ]);
      }
      for (const events of byTransaction.values()) {
        const streams = new Set(events.map((event) => event.streamId));
        expect(streams.size).toBeLessThanOrEqual(4);
        if (!streams.has('big')) expect(events.length).toBeLessThanOrEqual(5);
        else expect(streams.size).toBe(1);
      }
      expect([...byTransaction.values()].flat()).toHaveLength(36 + 12 + 8);
    });

    it('fails only the callers whose stream conflicts; the rest of their batch is stored', async () => {
      for (const streamId of ['a', 'b', 'c', 'd', 'e']) {
        await ledger.append(streamId, [started(streamId)]);
      }
      const halfOld = completed('old');
      await ledger.append('e', [halfOld]);
      // One tick, so all of these are gathered into the same first statement.
      const settled = await Promise.allSettled([
        appender.append('a', items(1, 'a'), { expectedVersion: 1 }),
        appender.append('b', items(1, 'b'), { expectedVersion: 5 }),
        appender.append('c', items(2, 'c'), { expectedVersion: 'stream_exists' }),
        appender.append('new', items(1, 'n'), { expectedVersion: 'stream_exists' }),
        appender.append('d', items(1, 'd'), { expectedVersion: 'any' }),
        appender.append('e', [halfOld, completed('fresh')]),
        appender.append('f', [started('f'), ...items(2, 'f')], { expectedVersion: 'no_stream' }),
      ]);
      expect(settled.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      const reason = (index: number) => (settled[index] as PromiseRejectedResult).reason as Error;
      expect(reason(1)).toBeInstanceOf(ConcurrencyError);
      expect(reason(1)).toMatchObject({
        code: 'concurrency',
        streamId: 'b',
        expected: 5,
        actual: 1,
      });
      expect(reason(3)).toMatchObject({
        code: 'concurrency',
        streamId: 'new',
        expected: 'stream_exists',
        actual: 0,
      });
      expect(reason(5)).toBeInstanceOf(IdempotencyConflictError);
      expect(reason(5)).toMatchObject({ streamId: 'e', repeated: 1, events: 2 });

      const written = (await allEvents(ledger)).slice(6);
      expect(written.map((event) => [event.streamId, event.version])).toEqual([
        ['a', 2],
        ['c', 2],
        ['c', 3],
        ['d', 2],
        ['f', 1],
        ['f', 2],
        ['f', 3],
      ]);
      // The survivors were re-run together, not one by one.
      expect(new Set(written.map((event) => event.transactionId)).size).toBe(1);
      expect(await ledger.streamVersion('b')).toBe(1);
      expect(await ledger.streamVersion('e')).toBe(2);
      expect(await ledger.streamVersion('new')).toBe(0);
    });

    it('checks expectedVersion against the calls made before it on the same stream', async () => {
      const [one, two, three] = [[started('s')], items(2, 'two'), items(1, 'three')];
      const settled = await Promise.allSettled([
        appender.append('s', one, { expectedVersion: 'no_stream' }),
        appender.append('s', two, { expectedVersion: 1 }),
        appender.append('s', items(1, 'stale'), { expectedVersion: 1 }),
        appender.append('s', three, { expectedVersion: 3 }),
        appender.append('s', items(1, 'again'), { expectedVersion: 'no_stream' }),
      ]);
      expect(settled.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
      ]);
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({
        code: 'concurrency',
        expected: 1,
        actual: 3,
      });
      expect((settled[4] as PromiseRejectedResult).reason).toMatchObject({
        code: 'concurrency',
        expected: 'no_stream',
        actual: 4,
      });
      const stream = await ledger.readStream('s');
      expect(stream.map((event) => event.eventId)).toEqual(
        [...one, ...two, ...three].map((event) => event.eventId),
      );
    });

    it('fails an invalid call alone, before it reaches a batch', async () => {
      const settled = await Promise.allSettled([
        appender.append('ok-1', [started('ok-1'), ...items(1, 'a')]),
        appender.append('bad', [{ type: 'item.completed', data: { itemId: 42 } }] as never),
        appender.append('', items(1, 'b')),
        appender.append('ok-2', items(1, 'c'), { expectedVersion: -1 }),
        appender.append('ok-3', [started('ok-3'), ...items(2, 'd')]),
      ]);
      expect(settled.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'rejected',
        'rejected',
        'rejected',
        'fulfilled',
      ]);
      const bad = (settled[1] as PromiseRejectedResult).reason as InvalidEventError;
      expect(bad).toBeInstanceOf(InvalidEventError);
      expect(bad.issues[0]!.path).toBe('events[0].data.itemId');
      expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
      expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({
        code: 'invalid_input',
      });
      const stored = await allEvents(ledger);
      expect(stored.map((event) => event.streamId)).toEqual([
        'ok-1',
        'ok-1',
        'ok-3',
        'ok-3',
        'ok-3',
      ]);
    });

    it('answers a retry with the original positions and writes nothing', async () => {
      const batch = [started('r'), ...items(2, 'r')];
      const first = await appender.append('r', batch, { expectedVersion: 'no_stream' });
      await appender.append('r', items(1, 'later'));
      const retries = await Promise.all([
        appender.append('r', batch, { expectedVersion: 'no_stream' }),
        appender.append('r', batch),
        appender.append('other', [started('other')]),
      ]);
      expect(retries[0]).toEqual(first);
      expect(retries[1]).toEqual(first);
      expect(await allEvents(ledger)).toHaveLength(5);
      expect(await ledger.streamVersion('r')).toBe(4);
    });

    it('never puts one event id twice in a statement', async () => {
      const batch = [started('x'), completed('dup')];
      const settled = await Promise.allSettled([
        appender.append('x', batch),
        appender.append('x', batch),
        // Alongside x's first call this would fail as a version mismatch instead.
        appender.append('y', batch, { expectedVersion: 'stream_exists' }),
        appender.append('z', [started('z')]),
      ]);
      expect(settled.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      const [first, retry] = settled as PromiseFulfilledResult<AppendResult>[];
      expect(retry!.value).toEqual(first!.value);
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({
        code: 'idempotency_conflict',
        streamId: 'y',
      });
      expect(await allEvents(ledger)).toHaveLength(3);
    });

    it('matches upper-case event ids to their rows', async () => {
      const id = randomUUID().toUpperCase() as Uuid;
      await appender.append('u', [started('u')]);
      const first = await appender.append('u', [completed('a', id)]);
      expect(first.events[0]!.eventId).toBe(id.toLowerCase());
      expect(await appender.append('u', [completed('a', id.toLowerCase() as Uuid)])).toEqual(first);
      expect(await ledger.readStream('u')).toHaveLength(2);
    });

    it('flushes what is queued on close, then refuses new calls', async () => {
      await ledger.appendMany(
        [0, 1, 2, 3].map((index) => ({ streamId: `c-${index}`, events: [started(`c-${index}`)] })),
      );
      const queued = Array.from({ length: 20 }, (_, index) =>
        appender.append(`c-${index % 4}`, items(1, `c${index}`)),
      );
      await appender.close();
      const results = await Promise.all(queued);
      expect(results.map((result) => result.nextExpectedVersion)).toEqual(
        Array.from({ length: 20 }, (_, index) => Math.floor(index / 4) + 2),
      );
      expect(await allEvents(ledger)).toHaveLength(24);
      const refused = await appender
        .append('c-0', items(1, 'late'))
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(AppenderClosedError);
      expect(refused).toMatchObject({ code: 'appender_closed' });
      await appender.close();
      expect(await allEvents(ledger)).toHaveLength(24);
    });

    it('fails each caller of a batch whose statement fails for another reason', async () => {
      const gone = await store.open();
      await gone.close();
      const orphan = new CoalescingAppender(gone);
      const settled = await Promise.allSettled([
        orphan.append('a', items(1, 'a')),
        orphan.append('b', items(1, 'b')),
      ]);
      expect(settled.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
      for (const outcome of settled as PromiseRejectedResult[]) {
        expect(outcome.reason).toBeInstanceOf(Error);
        expect(outcome.reason).not.toBeInstanceOf(HeadwayError);
      }
      await orphan.close();
    });

    it('fails only the caller whose events the database refuses', async () => {
      // Stands in for data that passes validation and that the database still refuses.
      await sql`create function refuse_poison() returns trigger language plpgsql as $$
                begin raise exception 'poison refused'; end $$`.execute(ledger.db);
      await sql`create trigger refuse_poison before insert on events for each row
                when (new.stream_id = 'poison') execute function refuse_poison()`.execute(
        ledger.db,
      );
      const appender = new CoalescingAppender(ledger);
      const settled = await Promise.allSettled(
        ['a', 'poison', 'b'].map((streamId) =>
          appender.append(streamId, [started(streamId), ...items(2, streamId)]),
        ),
      );
      expect(settled.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/poison refused/);
      expect(new Set((await allEvents(ledger)).map((event) => event.streamId))).toEqual(
        new Set(['a', 'b']),
      );
      await appender.close();
    });

    it('rejects bounds outside 1 to the limits', () => {
      expect(() => new CoalescingAppender(ledger, { maxStreams: 0 })).toThrow(InvalidInputError);
      expect(() => new CoalescingAppender(ledger, { maxStreams: 1_001 })).toThrow(
        /maxStreams: expected an integer from 1 to 1000, received 1001/,
      );
      expect(() => new CoalescingAppender(ledger, { maxEvents: 1.5 })).toThrow(InvalidInputError);
    });
  });
}

/** One call of a random schedule. */
interface Call {
  stream: number;
  events: number;
  expected: ExpectedVersion;
  /** Open with job.started (a repeat keeps the content of the call it repeats). */
  starts: boolean;
  /** Repeat the event ids of an earlier call (index modulo the calls before). */
  repeat: number | undefined;
  /** Yield to I/O before this call, so it arrives while a write is in flight. */
  pause: boolean;
}

const call: fc.Arbitrary<Call> = fc.record({
  stream: fc.integer({ min: 0, max: 2 }),
  events: fc.integer({ min: 1, max: 3 }),
  expected: fc.oneof(
    fc.constantFrom<ExpectedVersion>('any', 'no_stream', 'stream_exists'),
    fc.integer({ min: 0, max: 6 }),
  ),
  starts: fc.boolean(),
  repeat: fc.option(fc.nat(), { freq: 4, nil: undefined }),
  pause: fc.boolean(),
});

type Outcome =
  | { ok: true; versions: number[]; sameAs?: number }
  | { ok: false; code: 'concurrency'; expected: ExpectedVersion; actual: number }
  | { ok: false; code: 'idempotency_conflict' }
  | { ok: false; code: 'job_not_started' };

/** What running the calls one by one, in call order, must give. */
function model(calls: readonly Call[], idsOf: readonly Uuid[][], startsOf: readonly boolean[]) {
  const heads = [0, 0, 0];
  const logs: string[][] = [[], [], []];
  const written = new Map<string, { stream: number; call: number }>();
  const outcomes = calls.map((current, index): Outcome => {
    const key = idsOf[index]!.join();
    const earlier = written.get(key);
    if (earlier?.stream === current.stream) return { ok: true, versions: [], sameAs: earlier.call };
    const head = heads[current.stream]!;
    const { expected } = current;
    const matches =
      expected === 'any' ||
      (expected === 'no_stream' && head === 0) ||
      (expected === 'stream_exists' && head > 0) ||
      expected === head;
    // The version is checked first, then whether a new stream opens with job.started, then
    // the ids.
    if (!matches && earlier) return { ok: false, code: 'idempotency_conflict' };
    if (!matches) return { ok: false, code: 'concurrency', expected, actual: head };
    if (head === 0 && !startsOf[index]) return { ok: false, code: 'job_not_started' };
    if (earlier) return { ok: false, code: 'idempotency_conflict' };
    const ids = idsOf[index]!;
    heads[current.stream] = head + ids.length;
    logs[current.stream]!.push(...ids);
    written.set(key, { stream: current.stream, call: index });
    return { ok: true, versions: ids.map((_, offset) => head + offset + 1) };
  });
  return { outcomes, logs };
}

describe('coalescing appender: random schedules on PGlite', () => {
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await openLedger({ dataDir: 'memory://' });
  });
  afterAll(async () => {
    await ledger.close();
  });

  it('gives every call the outcome of running the calls one by one', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(call, { minLength: 1, maxLength: 12 }),
        // Small bounds too, so batches overflow into the next one.
        fc.record({
          maxStreams: fc.integer({ min: 1, max: 4 }),
          maxEvents: fc.integer({ min: 1, max: 8 }),
        }),
        async (calls, bounds) => {
          run += 1;
          const streamIds = [0, 1, 2].map((stream) => `run-${run}-${stream}`);
          const idsOf: Uuid[][] = [];
          // A repeat is a true retry: the same ids with the same content.
          const contentOf: number[] = [];
          const startsOf: boolean[] = [];
          for (const [index, current] of calls.entries()) {
            const repeated = current.repeat !== undefined && index > 0;
            contentOf.push(repeated ? contentOf[current.repeat! % index]! : index);
            startsOf.push(repeated ? startsOf[current.repeat! % index]! : current.starts);
            idsOf.push(
              repeated
                ? idsOf[current.repeat! % index]!
                : Array.from({ length: current.events }, () => randomUUID()),
            );
          }
          const appender = new CoalescingAppender(ledger, bounds);
          const pending: Promise<PromiseSettledResult<AppendResult>>[] = [];
          for (const [index, current] of calls.entries()) {
            if (current.pause) await nextTurn();
            const events = idsOf[index]!.map((id, offset) =>
              offset === 0 && startsOf[index]
                ? started(`${contentOf[index]}`, id)
                : completed(`${contentOf[index]}-${offset}`, id),
            );
            pending.push(
              settle(
                appender.append(streamIds[current.stream]!, events, {
                  expectedVersion: current.expected,
                }),
              ),
            );
          }
          const settled = await Promise.all(pending);
          await appender.close();

          const { outcomes, logs } = model(calls, idsOf, startsOf);
          outcomes.forEach((outcome, index) => {
            const actual = settled[index]!;
            if (!outcome.ok) {
              expect(actual.status).toBe('rejected');
              const { ok: _, ...fields } = outcome;
              expect((actual as PromiseRejectedResult).reason).toMatchObject(fields);
              return;
            }
            expect(actual.status).toBe('fulfilled');
            const result = (actual as PromiseFulfilledResult<AppendResult>).value;
            if (outcome.sameAs !== undefined) {
              expect(result).toEqual(
                (settled[outcome.sameAs] as PromiseFulfilledResult<AppendResult>).value,
              );
            } else {
              expect(result.events.map((event) => event.version)).toEqual(outcome.versions);
            }
          });
          for (const [stream, streamId] of streamIds.entries()) {
            const stored = await ledger.readStream(streamId);
            expect(stored.map((event) => event.eventId)).toEqual(logs[stream]);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe.skipIf(!postgresAvailable)('coalescing appender: a stuck write on PostgreSQL', () => {
  const store = storesUnderTest().find((candidate) => candidate.name === 'postgres')!;
  let ledger: Ledger;
  beforeAll(async () => {
    ledger = await store.open();
  });
  afterAll(async () => {
    await ledger.close();
    await store.cleanup();
  });

  it('holds up only its own stream, is abandoned past its bound, and a retry stores it once', async () => {
    await ledger.append('stuck', [started('stuck')]);
    const appender = new CoalescingAppender(ledger, { writeTimeoutMs: 500 });
    // Another session holds the stream's head row, so a write to it waits on the lock.
    const holder = new pg.Client({ connectionString: postgresUrl });
    await holder.connect();
    try {
      const schema = (
        await sql<{ schema: string }>`select current_schema() as schema`.execute(ledger.db)
      ).rows[0]!.schema;
      await holder.query('begin');
      await holder.query(`select 1 from ${schema}.streams where stream_id = 'stuck' for update`);

      const blocked = items(2, 'blocked');
      const stuck = settle(appender.append('stuck', blocked));
      await nextTurn();
      // Other streams are written meanwhile, in their own statements.
      const others = await Promise.all(
        Array.from({ length: 5 }, (_, index) =>
          appender.append(`free-${index}`, [started(`free-${index}`), ...items(2, 'f')]),
        ),
      );
      expect(others.map((result) => result.nextExpectedVersion)).toEqual([3, 3, 3, 3, 3]);
      // Only the stuck write is left, and health checks can see how long it has waited.
      const during = appender.backlog();
      expect(during).toMatchObject({ queued: 0, inFlight: 1 });
      expect(during.oldestWaitMs).toBeGreaterThan(0);

      const outcome = await stuck;
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailableError);
      expect(appender.backlog()).toEqual({
        queued: 0,
        inFlight: 0,
        oldestWaitMs: 0,
        failing: true,
      });

      await holder.query('commit');
      // Whatever became of the abandoned write, a retry with the same ids stores it once.
      const retried = await appender.append('stuck', blocked);
      expect(retried.events.map((event) => event.eventId)).toEqual(
        blocked.map((event) => event.eventId),
      );
      const stream = await ledger.readStream('stuck');
      expect(stream.map((event) => event.eventId)).toEqual([
        stream[0]!.eventId,
        ...blocked.map((event) => event.eventId),
      ]);
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.end();
      await appender.close();
    }
  });
});
