import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventInput, JsonValue } from '../schema/events.ts';
import { limits } from '../schema/limits.ts';
import { createClient, EventsNotStoredError } from '../src/client/index.ts';
import { CoalescingAppender } from '../src/append/coalescing-appender.ts';
import {
  EventTooLargeError,
  InvalidEventError,
  JobNotStartedError,
  type ExpectedVersion,
} from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { importNdjson } from '../src/append/ndjson.ts';
import { createServer } from '../src/server/server.ts';
import { runHeadway } from './cli-runner.ts';
import { storesUnderTest } from './stores.ts';
import { listenOnLoopback } from './listen.ts';

const started = (jobId: string): EventInput => ({
  type: 'job.started',
  data: { name: jobId, kind: 'crawl', project: 'refusals' },
});
const completed = (itemId: string): EventInput => ({
  type: 'item.completed',
  data: { itemId },
});

/** Arrays and objects in turn, `depth` deep, around a number. */
function nested(depth: number): JsonValue {
  let value: JsonValue = 1;
  for (let level = 0; level < depth; level++) value = level % 2 ? { a: value } : [value];
  return value;
}

/** Any JSON a producer may attach to an error, nested as deep as the catalogue allows. */
const details = {
  status: 503,
  response: { headers: { 'retry-after': '2' }, body: 'upstream "busy" \\ 😀' },
  attempts: [1, 2.5, null, true, { at: '2026-11-30T10:00:00Z' }],
  deep: nested(limits.jsonDepth - 1),
};

/** What the log holds: nothing of a refused append may show here. */
async function logState(ledger: Ledger) {
  const events = await ledger.db
    .selectFrom('events')
    .select((eb) => [eb.fn.countAll<string>().as('count'), eb.fn.max('position').as('last')])
    .executeTakeFirstOrThrow();
  const streams = await ledger.db
    .selectFrom('streams')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .executeTakeFirstOrThrow();
  return {
    events: Number(events.count),
    streams: Number(streams.count),
    lastPosition: String(events.last ?? 0),
  };
}

/** No trace of a job: no stream row, no events, version 0. */
async function expectNoJob(ledger: Ledger, jobId: string) {
  expect(await ledger.readStream(jobId)).toEqual([]);
  expect(await ledger.streamVersion(jobId)).toBe(0);
  const row = await ledger.db
    .selectFrom('streams')
    .select('stream_id')
    .where('stream_id', '=', jobId)
    .executeTakeFirst();
  expect(row).toBeUndefined();
}

const refusal = async (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => error,
  );

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`refusals: ${store.name}`, () => {
    let ledger: Ledger;
    let server: FastifyInstance;
    let base: string;

    beforeAll(async () => {
      ledger = await store.open();
      server = await createServer({ ledger });
      base = await listenOnLoopback(server);
    });
    afterAll(async () => {
      await server?.close();
      await ledger?.close();
      await store.cleanup();
    });

    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, never> };
    };

    describe('a job never started, through the library', () => {
      it('refuses its item events with job_not_started, and stores nothing', async () => {
        const before = await logState(ledger);
        for (const expectedVersion of ['any', 'no_stream', 0] as ExpectedVersion[]) {
          const error = await refusal(
            ledger.append('crawl-7', [completed('a'), completed('b')], { expectedVersion }),
          );
          expect(error).toBeInstanceOf(JobNotStartedError);
          expect(error).toMatchObject({
            code: 'job_not_started',
            jobId: 'crawl-7',
            received: 'item.completed',
          });
          expect((error as Error).message).toMatchInlineSnapshot(
            `"job "crawl-7" was never started: expected its first event to be job.started, received item.completed"`,
          );
        }
        // A version only an existing stream can have is a conflict, as before.
        const stale = await refusal(
          ledger.append('crawl-7', [completed('a')], { expectedVersion: 'stream_exists' }),
        );
        expect(stale).toMatchObject({ code: 'concurrency', actual: 0 });
        await expectNoJob(ledger, 'crawl-7');
        expect(await logState(ledger)).toEqual(before);
      });

      it('refuses its custom x.* events too', async () => {
        const before = await logState(ledger);
        const error = await refusal(
          ledger.append('custom-only', [
            { type: 'x.deploy', data: { to: 'eu' } },
            started('custom-only'),
          ]),
        );
        expect(error).toBeInstanceOf(JobNotStartedError);
        expect(error).toMatchObject({ jobId: 'custom-only', received: 'x.deploy' });
        await expectNoJob(ledger, 'custom-only');
        expect(await logState(ledger)).toEqual(before);
      });

      it('accepts a batch that opens with job.started, then any event with any version mode', async () => {
        const first = await ledger.append('opens', [started('opens'), completed('a')], {
          expectedVersion: 'no_stream',
        });
        expect(first.events.map((event) => event.version)).toEqual([1, 2]);
        // Custom events and items on the existing job, by every mode.
        await ledger.append('opens', [{ type: 'x.note', data: { any: ['json'] } }]);
        await ledger.append('opens', [completed('b')], { expectedVersion: 'any' });
        await ledger.append('opens', [completed('c')], { expectedVersion: 'stream_exists' });
        const last = await ledger.append('opens', [completed('d')], { expectedVersion: 5 });
        expect(last.nextExpectedVersion).toBe(6);
        expect((await ledger.readStream('opens')).map((event) => event.type)).toEqual([
          'job.started',
          'item.completed',
          'x.note',
          'item.completed',
          'item.completed',
          'item.completed',
        ]);
      });

      it('answers a retry of a stored first batch with its original positions', async () => {
        const batch = [started('retried'), completed('a')].map((event) => ({
          ...event,
          eventId: randomUUID(),
        }));
        const first = await ledger.append('retried', batch, { expectedVersion: 'no_stream' });
        await ledger.append('retried', [completed('later')]);
        const before = await logState(ledger);
        for (const expectedVersion of ['any', 'no_stream', 0] as ExpectedVersion[]) {
          expect(await ledger.append('retried', batch, { expectedVersion })).toEqual(first);
        }
        expect(await logState(ledger)).toEqual(before);
      });

      it('refuses a whole appendMany call that holds one job never started, and says so', async () => {
        await ledger.append('many-started', [started('many-started')]);
        const before = await logState(ledger);
        const error = await refusal(
          ledger.appendMany([
            { streamId: 'many-started', events: [completed('a')] },
            { streamId: 'many-new', events: [started('many-new'), completed('b')] },
            { streamId: 'many-never', events: [completed('c')] },
          ]),
        );
        expect(error).toBeInstanceOf(JobNotStartedError);
        expect(error).toMatchObject({ jobId: 'many-never', received: 'item.completed' });
        expect((error as Error).message).toMatchInlineSnapshot(
          `"job "many-never" was never started: expected its first event to be job.started, received item.completed; appendMany stores all of its streams or none, so nothing of this call was stored"`,
        );
        // Row by row: the started job has only its start, the others nothing at all.
        expect((await ledger.readStream('many-started')).map((event) => event.type)).toEqual([
          'job.started',
        ]);
        expect(await ledger.streamVersion('many-started')).toBe(1);
        await expectNoJob(ledger, 'many-new');
        await expectNoJob(ledger, 'many-never');
        expect(await logState(ledger)).toEqual(before);

        // Without the job never started, the same call is stored whole.
        const results = await ledger.appendMany([
          { streamId: 'many-started', events: [completed('a')] },
          { streamId: 'many-new', events: [started('many-new'), completed('b')] },
        ]);
        expect(results.map((result) => result.nextExpectedVersion)).toEqual([2, 2]);
      });

      it('refuses only the calls of a job never started in a group commit; the rest are stored together', async () => {
        await ledger.append('group-a', [started('group-a')]);
        const before = await logState(ledger);
        const appender = new CoalescingAppender(ledger);
        const settled = await Promise.allSettled([
          appender.append('group-a', [completed('a1')]),
          appender.append('group-never', [completed('n1')]),
          appender.append('group-b', [started('group-b'), completed('b1')]),
          appender.append('group-x', [{ type: 'x.ping', data: {} }]),
        ]);
        await appender.close();
        expect(settled.map((outcome) => outcome.status)).toEqual([
          'fulfilled',
          'rejected',
          'fulfilled',
          'rejected',
        ]);
        const reason = (index: number): unknown => (settled[index] as PromiseRejectedResult).reason;
        expect(reason(1)).toBeInstanceOf(JobNotStartedError);
        // Each caller made a call of its own: nothing says another's was refused.
        expect((reason(1) as Error).message).toBe(
          'job "group-never" was never started: expected its first event to be job.started, received item.completed',
        );
        expect(reason(3)).toMatchObject({ code: 'job_not_started', received: 'x.ping' });
        await expectNoJob(ledger, 'group-never');
        await expectNoJob(ledger, 'group-x');
        const written = await ledger.db
          .selectFrom('events')
          .select(['stream_id', 'version', 'transaction_id'])
          .where('position', '>', before.lastPosition)
          .orderBy('position')
          .execute();
        expect(written.map((row) => [row.stream_id, Number(row.version)])).toEqual([
          ['group-a', 2],
          ['group-b', 1],
          ['group-b', 2],
        ]);
        expect(new Set(written.map((row) => row.transaction_id)).size).toBe(1);
      });

      it('lets no item in before the start of a job, however the first appends race', async () => {
        const jobId = 'raced';
        const calls = [
          ...Array.from({ length: 6 }, (_, index) =>
            ledger.append(jobId, [completed(`e${index}`)]),
          ),
          ledger.append(jobId, [started(jobId)]),
          ...Array.from({ length: 6 }, (_, index) =>
            ledger.append(jobId, [completed(`l${index}`)]),
          ),
        ];
        const settled = await Promise.allSettled(calls);
        expect(settled[6]!.status).toBe('fulfilled');
        for (const outcome of settled) {
          if (outcome.status === 'rejected') {
            expect(outcome.reason).toBeInstanceOf(JobNotStartedError);
          }
        }
        const stream = await ledger.readStream(jobId);
        expect(stream[0]).toMatchObject({ type: 'job.started', version: 1 });
        expect(stream).toHaveLength(settled.filter((o) => o.status === 'fulfilled').length);
      });
    });

    describe('a job never started, over HTTP', () => {
      it('answers 404 job_not_started with the error body, and stores nothing', async () => {
        const before = await logState(ledger);
        const answer = await post('/v1/jobs/http-never/events', {
          events: [{ type: 'item.completed', data: { itemId: 'a' } }],
        });
        expect(answer.status).toBe(404);
        expect(answer.body).toEqual({
          error: {
            code: 'job_not_started',
            message:
              'job "http-never" was never started: expected its first event to be job.started, received item.completed',
            expectedType: 'job.started',
            receivedType: 'item.completed',
          },
        });
        const custom = await post('/v1/jobs/http-never/events', {
          events: [{ type: 'x.note', data: { free: 'form' } }],
          expectedVersion: 'any',
        });
        expect(custom.status).toBe(404);
        expect(custom.body).toMatchObject({
          error: { code: 'job_not_started', receivedType: 'x.note' },
        });
        await expectNoJob(ledger, 'http-never');
        expect(await logState(ledger)).toEqual(before);
        expect((await fetch(`${base}/v1/jobs/http-never`)).status).toBe(404);
      });

      it('accepts a batch that opens with job.started, and later batches with any version mode', async () => {
        const first = await post('/v1/jobs/http-opens/events', {
          events: [
            { type: 'job.started', data: { name: 'n', kind: 'k', project: 'p' } },
            { type: 'item.completed', data: { itemId: 'a' } },
          ],
          expectedVersion: 'no_stream',
        });
        expect(first.status).toBe(200);
        expect(first.body).toMatchObject({ jobId: 'http-opens', version: 2 });
        const any = await post('/v1/jobs/http-opens/events', {
          events: [{ type: 'x.note', data: {} }],
          expectedVersion: 'any',
        });
        expect(any.status).toBe(200);
        expect(any.body).toMatchObject({ version: 3 });
        const created = await post('/v1/jobs', {
          jobId: 'http-posted',
          name: 'n',
          kind: 'k',
          project: 'p',
        });
        expect(created.status).toBe(201);
        const next = await post('/v1/jobs/http-posted/events', {
          events: [{ type: 'item.completed', data: { itemId: 'a' } }],
        });
        expect(next.status).toBe(200);
        expect(next.body).toMatchObject({ version: 2 });
      });

      it('refuses only the requests for the job never started among concurrent ones', async () => {
        await ledger.append('http-group', [started('http-group')]);
        const before = await logState(ledger);
        const answers = await Promise.all([
          post('/v1/jobs/http-group/events', { events: [completed('g1')] }),
          post('/v1/jobs/http-group-never/events', { events: [completed('n1')] }),
          post('/v1/jobs/http-group-new/events', {
            events: [started('http-group-new'), completed('new1')],
          }),
          post('/v1/jobs/http-group/events', { events: [completed('g2')] }),
        ]);
        expect(answers.map((answer) => answer.status)).toEqual([200, 404, 200, 200]);
        await expectNoJob(ledger, 'http-group-never');
        expect((await ledger.readStream('http-group')).map((event) => event.version)).toEqual([
          1, 2, 3,
        ]);
        expect(await ledger.streamVersion('http-group-new')).toBe(2);
        expect((await logState(ledger)).events).toBe(before.events + 4);
      });

      it('lets the SDK report a job never started at once, with no retry', async () => {
        const before = await logState(ledger);
        const failures: { retrying: boolean; status: unknown }[] = [];
        const client = createClient({
          url: base,
          flushIntervalMs: 10,
          onError: (error, context) =>
            failures.push({
              retrying: context.retrying,
              status: (error as { status?: unknown }).status,
            }),
        });
        const job = client.job('sdk-never');
        await job.itemCompleted('a');
        await job.itemCompleted('b');
        const error = await refusal(client.flush());
        expect(error).toBeInstanceOf(EventsNotStoredError);
        const [notStored, ...others] = (error as EventsNotStoredError).jobs;
        expect(others).toEqual([]);
        expect(notStored).toMatchObject({
          jobId: 'sdk-never',
          status: 404,
          code: 'job_not_started',
          attempts: 1,
          retriesExhausted: false,
          maybeStored: false,
        });
        expect(notStored!.events.map((event) => event.type)).toEqual([
          'item.completed',
          'item.completed',
        ]);
        expect(failures).toEqual([{ retrying: false, status: 404 }]);
        await client.close();
        await expectNoJob(ledger, 'sdk-never');
        expect(await logState(ledger)).toEqual(before);
      });
    });

    describe('error.details', () => {
      const failed = (itemId: string, extra: JsonValue): EventInput => ({
        type: 'item.failed',
        data: { itemId, error: { message: 'upstream refused', details: extra } },
      });

      it('keeps any JSON on item.failed and job.failed, read back equal, through the library', async () => {
        await ledger.append('details-lib', [
          started('details-lib'),
          failed('a', details),
          {
            type: 'job.failed',
            data: { error: { message: 'gave up', details: [details.response] } },
          },
        ]);
        const stream = await ledger.readStream('details-lib');
        expect(stream[1]!.data).toEqual({
          itemId: 'a',
          error: { message: 'upstream refused', details },
        });
        expect(stream[2]!.data).toEqual({
          error: { message: 'gave up', details: [details.response] },
        });
      });

      it('keeps any JSON on item.failed and job.failed, read back equal, over HTTP', async () => {
        const answer = await post('/v1/jobs/details-http/events', {
          events: [
            started('details-http'),
            failed('a', details),
            { type: 'job.failed', data: { error: { message: 'gave up', details } } },
          ],
        });
        expect(answer.status).toBe(200);
        const timeline = (await (
          await fetch(`${base}/v1/jobs/details-http/timeline?order=asc`)
        ).json()) as { events: { type: string; data: unknown }[] };
        expect(timeline.events.map((event) => event.data)).toEqual([
          started('details-http').data,
          { itemId: 'a', error: { message: 'upstream refused', details } },
          { error: { message: 'gave up', details } },
        ]);
      });

      it('refuses details past the byte cap or the nesting bound, storing nothing', async () => {
        await ledger.append('details-bounds', [started('details-bounds')]);
        const before = await logState(ledger);
        const large = failed('big', { body: 'x'.repeat(limits.eventBytes) });
        const deep = failed('deep', nested(limits.jsonDepth + 1));

        const tooLarge = await refusal(ledger.append('details-bounds', [large]));
        expect(tooLarge).toBeInstanceOf(EventTooLargeError);
        expect(tooLarge).toMatchObject({ code: 'event_too_large', limit: limits.eventBytes });
        const tooDeep = await refusal(ledger.append('details-bounds', [deep]));
        expect(tooDeep).toBeInstanceOf(InvalidEventError);
        expect((tooDeep as InvalidEventError).issues).toEqual([
          {
            path: 'events[0].data.error.details',
            message: `Too deep: expected arrays and objects nested at most ${limits.jsonDepth} deep`,
          },
        ]);
        // A bad event takes its whole batch down, on a new job as on an old one.
        await refusal(ledger.append('details-new', [started('details-new'), large]));
        await refusal(ledger.append('details-new', [started('details-new'), deep]));

        const overHttp = await post('/v1/jobs/details-bounds/events', { events: [large] });
        expect(overHttp.status).toBe(413);
        expect(overHttp.body).toMatchObject({
          error: { code: 'event_too_large', limitBytes: limits.eventBytes },
        });
        const deepOverHttp = await post('/v1/jobs/details-bounds/events', { events: [deep] });
        expect(deepOverHttp.status).toBe(400);
        expect(deepOverHttp.body).toMatchObject({
          error: {
            code: 'invalid_event',
            issues: [{ path: 'events[0].data.error.details' }],
          },
        });

        expect(await ledger.streamVersion('details-bounds')).toBe(1);
        await expectNoJob(ledger, 'details-new');
        expect(await logState(ledger)).toEqual(before);
      });
    });

    describe('import', () => {
      const line = (streamId: string, version: number, event: EventInput) =>
        JSON.stringify({
          streamId,
          version,
          eventId: randomUUID(),
          type: event.type,
          schemaVersion: 1,
          data: event.data,
          metadata: {},
          occurredAt: '2026-11-30T10:00:00.000Z',
          recordedAt: '2026-11-30T10:00:00.000Z',
          position: String(version),
        });

      let good: string[];
      beforeEach(() => {
        good = [
          line('import-good', 1, started('import-good')),
          line('import-good', 2, completed('a')),
        ];
      });

      it('imports jobs that start with job.started, and names the line of one that does not', async () => {
        const before = await logState(ledger);
        const error = await refusal(
          importNdjson(ledger, [...good, line('import-bad', 1, completed('b'))]),
        );
        expect(error).toBeInstanceOf(JobNotStartedError);
        expect((error as Error).message).toMatchInlineSnapshot(
          `"job "import-bad" was never started: expected its first event to be job.started, received item.completed; line 3 holds its first event; an export lists each job from its job.started"`,
        );
        await expectNoJob(ledger, 'import-bad');
        expect(await logState(ledger)).toEqual(before);

        expect(await importNdjson(ledger, good)).toEqual({
          events: 2,
          streams: 1,
          imported: 2,
          alreadyPresent: 0,
        });
        expect(await importNdjson(ledger, good)).toMatchObject({ imported: 0, alreadyPresent: 2 });
      });
    });
  });
}

describe('headway import of a job never started', { timeout: 180_000 }, () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-refusals-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('fails with one line naming the job and the line, exit code 1', async () => {
    const file = join(folder, 'unstarted.ndjson');
    await writeFile(
      file,
      `${JSON.stringify({
        streamId: 'cli-never',
        version: 1,
        eventId: '6a1f3b0e-1c2d-4e5f-8a9b-00000000f001',
        type: 'item.completed',
        schemaVersion: 1,
        data: { itemId: 'a' },
        occurredAt: '2026-11-30T10:00:00.000Z',
      })}\n`,
    );
    const run = await runHeadway(['--data-dir', join(folder, 'store'), 'import', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      'headway: job "cli-never" was never started: expected its first event to be job.started, received item.completed; line 1 holds its first event; an export lists each job from its job.started (job_not_started)\n',
    );
  });
});
