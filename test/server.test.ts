import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { readEventStream } from '../src/client/event-stream.ts';
import { parseTokens } from '../src/server/auth.ts';
import { createServer } from '../src/server/server.ts';
import { openLedger } from '../src/open-ledger.ts';
import { storesUnderTest } from './stores.ts';

const appendToken = 'append-token-0123456789';
const readToken = 'read-token-0123456789ab';
const adminToken = 'admin-token-0123456789a';

/** The fields of a response body that the assertions read (a body has only some). */
interface ResponseBody {
  [field: string]: unknown;
  error: { code: string; message: string; issues: { path: string; message: string }[] };
  events: {
    position: string;
    version: number;
    cursor: string;
    occurredAt: string;
    summary: string;
    data: { message: string };
  }[];
  items: { itemId: string }[];
  jobs: { jobId: string }[];
  groups: unknown[];
  nextCursor: string;
  paths: Record<string, { post: { requestBody?: unknown } }>;
}

/** A client of one server: JSON in and out, with an optional bearer token. */
function clientOf(base: string) {
  return async (
    method: string,
    path: string,
    options: { body?: unknown; rawBody?: string; token?: string } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let requestBody: string | undefined;
    if (options.rawBody !== undefined || options.body !== undefined) {
      headers['content-type'] = 'application/json';
      requestBody = options.rawBody ?? JSON.stringify(options.body);
    }
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      ...(requestBody === undefined ? {} : { body: requestBody }),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      json: (text ? JSON.parse(text) : null) as ResponseBody,
    };
  };
}

async function listen(server: FastifyInstance): Promise<string> {
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`HTTP API: ${store.name}`, () => {
    let ledger: Ledger;
    let server: FastifyInstance;
    let call: ReturnType<typeof clientOf>;
    let base: string;
    /** Every request below carries the admin token unless it says otherwise. */
    const admin = (method: string, path: string, body?: unknown) =>
      call(method, path, body === undefined ? { token: adminToken } : { body, token: adminToken });

    beforeAll(async () => {
      ledger = await store.open();
      server = await createServer({
        ledger,
        tokens: parseTokens(
          JSON.stringify({
            [appendToken]: ['append'],
            [readToken]: ['read'],
            [adminToken]: ['admin'],
          }),
        ),
        bodyLimitBytes: 256 * 1024,
      });
      base = await listen(server);
      call = clientOf(base);
    });
    afterAll(async () => {
      await server.close();
      await ledger.close();
      await store.cleanup();
    });

    it('starts a job, appends batches idempotently, and reports them on every read route', async () => {
      const started = await call('POST', '/v1/jobs', {
        token: appendToken,
        body: {
          jobId: 'web-1',
          name: 'crawl',
          kind: 'crawl',
          project: 'web',
          total: 3,
          stages: [{ name: 'fetch' }],
          occurredAt: '2026-11-23T10:00:00Z',
        },
      });
      expect(started).toMatchObject({ status: 201, json: { jobId: 'web-1', version: 1 } });

      const batch = {
        events: [
          { type: 'stage.started', data: { stage: 'fetch' }, occurredAt: '2026-11-23T10:00:01Z' },
          {
            type: 'item.started',
            data: { itemId: 'a', leaseMs: 1 },
            eventId: '00000000-0000-4000-8000-000000000001',
            occurredAt: '2026-11-23T10:00:01Z',
          },
          { type: 'item.completed', data: { itemId: 'a', durationMs: 40 } },
          {
            type: 'item.failed',
            data: {
              itemId: 'b',
              error: { message: 'HTTP 503 from origin', category: 'transient' },
            },
          },
          { type: 'item.started', data: { itemId: 'c' }, occurredAt: '2026-11-23T10:00:02Z' },
          { type: 'log.written', data: { level: 'warn', message: 'slow origin' } },
          { type: 'log.written', data: { level: 'info', message: 'still going' } },
        ],
        expectedVersion: 1,
      };
      const appended = await call('POST', '/v1/jobs/web-1/events', {
        token: appendToken,
        body: batch,
      });
      expect(appended.status).toBe(200);
      expect(appended.json.version).toBe(8);
      expect(appended.json.events).toHaveLength(7);
      expect(typeof appended.json.events[0]!.position).toBe('string');

      // A retry of the first event alone, with its id, writes nothing and says where it is.
      const retried = await call('POST', '/v1/jobs/web-1/events', {
        token: appendToken,
        body: { events: [batch.events[1]] },
      });
      expect(retried.status).toBe(200);
      expect(retried.json.events[0]).toEqual(appended.json.events[1]);
      expect(await ledger.streamVersion('web-1')).toBe(8);

      // The same id with other data is a conflict that names the id, not a success.
      const reused = await call('POST', '/v1/jobs/web-1/events', {
        token: appendToken,
        body: { events: [{ ...batch.events[1], data: { itemId: 'z', leaseMs: 1 } }] },
      });
      expect(reused.status).toBe(409);
      expect(reused.json.error).toMatchObject({
        code: 'idempotency_conflict',
        eventIds: ['00000000-0000-4000-8000-000000000001'],
        fields: ['data'],
      });
      expect(reused.json.error.message).toContain('00000000-0000-4000-8000-000000000001');
      expect(await ledger.streamVersion('web-1')).toBe(8);

      const status = await admin('GET', '/v1/jobs/web-1');
      expect(status.status).toBe(200);
      expect(status.json.progress).toMatchObject({
        status: 'running',
        counts: { completed: 1, failed: 1, inFlight: 1 },
        total: 3,
      });
      expect(status.json.children).toBeNull();

      const eta = await admin('GET', '/v1/jobs/web-1/eta');
      expect(eta.json).toMatchObject({ jobId: 'web-1', processed: 2, total: 3, remaining: 1 });

      const summary = await admin('GET', '/v1/jobs/web-1/summary');
      expect(summary.json).toMatchObject({ jobId: 'web-1' });

      const failures = await admin('GET', '/v1/jobs/web-1/failures');
      expect(failures.json.groups).toHaveLength(1);
      expect(failures.json.groups[0]).toMatchObject({ category: 'transient', count: 1 });
      const report = await admin('GET', '/v1/jobs/web-1/failures?format=export');
      expect(report.json).toMatchObject({ jobId: 'web-1' });

      const inFlight = await admin('GET', '/v1/jobs/web-1/items?status=in_flight');
      expect(inFlight.json.items.map((item: { itemId: string }) => item.itemId)).toEqual(['c']);
      const failed = await admin('GET', '/v1/jobs/web-1/items?status=failed');
      expect(failed.json.items.map((item: { itemId: string }) => item.itemId)).toEqual(['b']);
      const stuck = await admin('GET', '/v1/jobs/web-1/items?status=stuck&leaseMs=1');
      expect(stuck.json.items.map((item: { itemId: string }) => item.itemId)).toEqual(['c']);

      const firstPage = await admin('GET', '/v1/jobs/web-1/timeline?limit=3');
      expect(firstPage.json.events.map((event: { version: number }) => event.version)).toEqual([
        1, 2, 3,
      ]);
      const secondPage = await admin(
        'GET',
        `/v1/jobs/web-1/timeline?limit=10&after=${firstPage.json.nextCursor}`,
      );
      expect(secondPage.json.events.map((event: { version: number }) => event.version)).toEqual([
        4, 5, 6, 7, 8,
      ]);
      expect(secondPage.json.events[0]!.cursor).toMatch(/^\d+:\d+$/);
      const onlyFailures = await admin('GET', '/v1/jobs/web-1/timeline?type=item.failed');
      expect(onlyFailures.json.events).toHaveLength(1);

      expect(onlyFailures.json.events[0]!.summary).toBe(
        'item.failed b [transient] HTTP 503 from origin',
      );

      const warnings = await admin('GET', '/v1/jobs/web-1/logs?level=warn');
      expect(
        warnings.json.events.map((event: { data: { message: string } }) => event.data.message),
      ).toEqual(['slow origin']);
      // The level is filtered in the query, so a page of one holds the one warning.
      const oneWarning = await admin('GET', '/v1/jobs/web-1/logs?level=warn&limit=1');
      expect(oneWarning.json.events).toHaveLength(1);
      const newestLog = await admin('GET', '/v1/jobs/web-1/logs?order=desc&limit=1');
      expect(newestLog.json.events[0]!.data.message).toBe('still going');
      expect(newestLog.json.nextCursor).not.toBeNull();

      const throughput = await admin('GET', '/v1/jobs/web-1/throughput');
      expect(throughput.json).toMatchObject({ jobId: 'web-1', eta: { processed: 2, total: 3 } });
      // A sample at the start; the first rate window closes with item a, stamped now.
      expect(throughput.json.points).toEqual([
        { at: Date.parse('2026-11-23T10:00:00Z'), processed: 0 },
        { at: Date.parse(secondPage.json.events[0]!.occurredAt), processed: 1 },
      ]);

      const jobs = await admin('GET', '/v1/jobs?project=web&status=running,paused&active=true');
      expect(jobs.json.jobs.map((job: { jobId: string }) => job.jobId)).toEqual(['web-1']);
      const none = await admin('GET', '/v1/jobs?status=completed');
      expect(none.json.jobs).toEqual([]);

      const project = await admin('GET', '/v1/projects/web/progress?active=true');
      expect(project.json.projects).toMatchObject([{ project: 'web', jobs: 1, failed: 1 }]);
      const all = await admin('GET', '/v1/projects/all/progress');
      expect(all.json.jobs.length).toBeGreaterThanOrEqual(1);

      await call('POST', '/v1/jobs/web-1/events', {
        token: appendToken,
        body: { events: [{ type: 'job.completed', data: {} }] },
      });
      const stages = await admin('GET', '/v1/metrics/stages?project=web');
      expect(stages.json.stages).toMatchObject([{ kind: 'crawl', stage: 'fetch', runs: 1 }]);
    });

    it('resumes a crashed job over HTTP, and refuses a finished one with 409', async () => {
      await call('POST', '/v1/jobs', {
        token: appendToken,
        body: { jobId: 'crashy', name: 'c', kind: 'k', project: 'resume' },
      });
      await call('POST', '/v1/jobs/crashy/events', {
        token: appendToken,
        body: { events: [{ type: 'item.started', data: { itemId: 'x' } }] },
      });
      const resumed = await call('POST', '/v1/jobs/crashy/resume', {
        token: appendToken,
        body: { reason: 'worker restarted' },
      });
      expect(resumed.status).toBe(200);
      expect(resumed.json).toMatchObject({ jobId: 'crashy', expired: ['x'], pending: ['x'] });

      const finished = await call('POST', '/v1/jobs/web-1/resume', {
        token: appendToken,
        body: {},
      });
      expect(finished.status).toBe(409);
      expect(finished.json.error.code).toBe('job_finished');
    });

    it('answers each error with its status and a message that says what was expected', async () => {
      const unknownJob = await admin('GET', '/v1/jobs/no-such-job');
      expect(unknownJob.status).toBe(404);
      expect(unknownJob.json.error.message).toMatch(/Job 'no-such-job' was not found/);
      for (const path of ['summary', 'failures', 'items', 'timeline', 'logs', 'throughput']) {
        expect((await admin('GET', `/v1/jobs/no-such-job/${path}`)).status).toBe(404);
      }
      expect((await admin('POST', '/v1/jobs/no-such-job/resume', {})).status).toBe(404);
      expect((await admin('GET', '/v1/nothing-here')).status).toBe(404);

      const conflict = await admin('POST', '/v1/jobs/web-1/events', {
        events: [{ type: 'log.written', data: { level: 'info', message: 'late' } }],
        expectedVersion: 2,
      });
      expect(conflict.status).toBe(409);
      expect(conflict.json.error).toMatchObject({
        code: 'concurrency',
        expectedVersion: 2,
        actualVersion: 9,
      });
      const duplicateJob = await admin('POST', '/v1/jobs', {
        jobId: 'web-1',
        name: 'again',
        kind: 'crawl',
        project: 'web',
      });
      expect(duplicateJob.status).toBe(409);

      const badEvent = await admin('POST', '/v1/jobs/web-1/events', {
        events: [{ type: 'item.completed', data: { itemId: 7 } }],
      });
      expect(badEvent.status).toBe(400);
      expect(badEvent.json.error.issues).toContainEqual({
        path: 'events[0].data.itemId',
        message: expect.stringMatching(/expected string, received number/),
      });

      const badEnvelope = await admin('POST', '/v1/jobs/web-1/events', { events: [] });
      expect(badEnvelope.status).toBe(400);
      expect(badEnvelope.json.error.issues[0]!.path).toBe('body.events');

      const badQuery = await admin('GET', '/v1/jobs?limit=0');
      expect(badQuery.status).toBe(400);
      expect(badQuery.json.error.issues[0]!.path).toBe('querystring.limit');

      const notJson = await call('POST', '/v1/jobs/web-1/events', {
        token: adminToken,
        rawBody: '{"events": [',
      });
      expect(notJson.status).toBe(400);

      const huge = await admin('POST', '/v1/jobs/web-1/events', {
        events: [{ type: 'log.written', data: { level: 'info', message: 'x'.repeat(300 * 1024) } }],
      });
      expect(huge.status).toBe(413);
      expect(await ledger.streamVersion('web-1')).toBe(9);
    });

    it('asks for a token on every /v1 route and checks its scope; health and the document are open', async () => {
      const routes: [string, string, unknown?][] = [
        ['POST', '/v1/jobs', { name: 'n', kind: 'k', project: 'p' }],
        ['POST', '/v1/jobs/web-1/events', { events: [{ type: 'x.ping', data: {} }] }],
        ['POST', '/v1/jobs/web-1/resume', {}],
        ['GET', '/v1/jobs'],
        ['GET', '/v1/jobs/web-1'],
        ['GET', '/v1/jobs/web-1/eta'],
        ['GET', '/v1/jobs/web-1/summary'],
        ['GET', '/v1/jobs/web-1/failures'],
        ['GET', '/v1/jobs/web-1/items'],
        ['GET', '/v1/jobs/web-1/timeline'],
        ['GET', '/v1/timeline'],
        ['GET', '/v1/projections'],
        ['GET', '/v1/jobs/web-1/logs'],
        ['GET', '/v1/jobs/web-1/throughput'],
        ['GET', '/v1/projects/all/progress'],
        ['GET', '/v1/metrics/stages'],
        ['GET', '/v1/jobs/web-1/stream'],
        ['GET', '/v1/stream'],
        ['GET', '/metrics'],
      ];
      const before = await ledger.streamVersion('web-1');
      for (const [method, path, requestBody] of routes) {
        const options = requestBody === undefined ? {} : { body: requestBody };
        const anonymous = await call(method, path, options);
        expect(anonymous.status, `${method} ${path}`).toBe(401);
        expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
        const wrong = await call(method, path, { ...options, token: 'not-a-known-token-at-all' });
        expect(wrong.status, `${method} ${path}`).toBe(401);
        const otherScope = method === 'GET' ? appendToken : readToken;
        const forbidden = await call(method, path, { ...options, token: otherScope });
        expect(forbidden.status, `${method} ${path}`).toBe(403);
      }
      expect(await ledger.streamVersion('web-1')).toBe(before);

      const health = await call('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.json).toMatchObject({ status: 'ok', database: 'reachable' });
      const document = await call('GET', '/openapi.json');
      expect(document.status).toBe(200);
      expect(Object.keys(document.json.paths)).toEqual(
        expect.arrayContaining([
          '/v1/jobs',
          '/v1/jobs/{id}',
          '/v1/jobs/{id}/events',
          '/v1/jobs/{id}/timeline',
          '/v1/timeline',
          '/v1/projections',
          '/v1/projects/{project}/progress',
          '/v1/metrics/stages',
        ]),
      );
      expect(document.json.paths['/v1/jobs/{id}/events']!.post.requestBody).toBeDefined();
    });

    it('streams a job over SSE: snapshot, every event in order, and Last-Event-ID resumes exactly', async () => {
      await call('POST', '/v1/jobs', {
        token: appendToken,
        body: { jobId: 'sse-1', name: 'sse', kind: 'k', project: 'sse' },
      });
      await call('POST', '/v1/jobs', {
        token: appendToken,
        body: { jobId: 'other', name: 'other', kind: 'k', project: 'elsewhere' },
      });
      const url = `${base}/v1/jobs/sse-1/stream?after=0:0`;
      const first = new AbortController();
      const seen: { id: string; version: number }[] = [];
      let snapshot: unknown;
      const produce = (async () => {
        for (let batch = 0; batch < 10; batch += 1) {
          const events = Array.from({ length: 5 }, (_, index) => ({
            type: 'item.completed',
            data: { itemId: `i${batch * 5 + index}` },
          }));
          await call('POST', '/v1/jobs/sse-1/events', { token: appendToken, body: { events } });
          await call('POST', '/v1/jobs/other/events', {
            token: appendToken,
            body: { events: [{ type: 'x.noise', data: {} }] },
          });
        }
      })();
      // The first client leaves after 20 events.
      for await (const message of readEventStream(url, {
        token: readToken,
        signal: first.signal,
      })) {
        if (message.event === 'snapshot') snapshot = message.data;
        if (message.event !== 'event') continue;
        seen.push({ id: message.id!, version: (message.data as { version: number }).version });
        if (seen.length === 20) first.abort();
      }
      expect(snapshot).toMatchObject({ jobId: 'sse-1', progress: { jobId: 'sse-1' } });
      await produce;
      // The second comes back with its last id and reads to the end: 51 events in all.
      const second = new AbortController();
      for await (const message of readEventStream(url, {
        token: readToken,
        lastEventId: seen.at(-1)!.id,
        signal: second.signal,
      })) {
        if (message.event !== 'event') continue;
        expect((message.data as { streamId: string }).streamId).toBe('sse-1');
        seen.push({ id: message.id!, version: (message.data as { version: number }).version });
        if (seen.length === 51) second.abort();
      }
      expect(seen.map((entry) => entry.version)).toEqual(
        Array.from({ length: 51 }, (_, i) => i + 1),
      );

      // The project stream carries only that project's events; a bad id is a 400.
      const project = new AbortController();
      const types: string[] = [];
      for await (const message of readEventStream(`${base}/v1/stream?project=elsewhere&after=0:0`, {
        token: readToken,
        signal: project.signal,
      })) {
        if (message.event === 'snapshot') {
          expect(message.data).toMatchObject({ jobs: [{ jobId: 'other' }] });
          continue;
        }
        types.push((message.data as { type: string }).type);
        if (types.length === 11) project.abort();
      }
      expect(types).toEqual(['job.started', ...Array(10).fill('x.noise')]);
      await expect(
        readEventStream(`${base}/v1/jobs/sse-1/stream`, {
          token: readToken,
          lastEventId: 'yesterday',
        }).next(),
      ).rejects.toMatchObject({ status: 400 });
      await expect(
        readEventStream(`${base}/v1/jobs/nope/stream`, { token: readToken }).next(),
      ).rejects.toMatchObject({ status: 404 });
    });

    it('pages through GET /v1/jobs with nextCursor: every job once, newest first', async () => {
      const at = (second: number) => new Date(Date.UTC(2026, 10, 20, 9, 0, second)).toISOString();
      // Four jobs share one update time: the cursor must break the tie by id.
      for (const [index, jobId] of ['p-d', 'p-a', 'p-c', 'p-b', 'p-e', 'p-f', 'p-g'].entries()) {
        await admin('POST', '/v1/jobs', {
          jobId,
          name: jobId,
          kind: 'k',
          project: 'pages',
          occurredAt: at(index < 4 ? 1 : index),
        });
      }
      await ledger.catchUpProjections();
      // Two more changes past the checkpoint, so pages mix stored states and the log's tail.
      await admin('POST', '/v1/jobs/p-a/events', {
        events: [{ type: 'x.touch', data: {}, occurredAt: at(30) }],
      });
      await admin('POST', '/v1/jobs/p-f/events', {
        events: [{ type: 'x.touch', data: {}, occurredAt: at(1) }],
      });
      const all = await admin('GET', '/v1/jobs?project=pages&limit=100');
      const expected = ['p-a', 'p-g', 'p-e', 'p-b', 'p-c', 'p-d', 'p-f'];
      expect(all.json.jobs.map((job) => job.jobId)).toEqual(expected);
      const paged: string[] = [];
      let cursor: string | null = '';
      while (cursor !== null) {
        const page = await admin(
          'GET',
          `/v1/jobs?project=pages&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        expect(page.status).toBe(200);
        paged.push(...page.json.jobs.map((job) => job.jobId));
        cursor = page.json.nextCursor;
      }
      expect(paged).toEqual(expected);
      // A cursor naming a job id PostgreSQL cannot store is refused, whatever the filters.
      for (const query of ['', '&status=paused']) {
        const refused = await admin('GET', `/v1/jobs?cursor=1%3Aa%00b${query}`);
        expect(refused.status).toBe(400);
        expect(JSON.stringify(refused.json)).toContain('NUL');
      }
      await expect(ledger.jobs({ after: '1:a\u0000b' })).rejects.toThrow(/NUL/);
      // A page that ends exactly at the last job says so: no empty page follows.
      const exact = await admin('GET', '/v1/jobs?project=pages&limit=7');
      expect(exact.json.jobs).toHaveLength(7);
      expect(exact.json.nextCursor).toBeNull();
      // Text is searched where the jobs are, stored (p-b) or in the tail (p-a), before the limit.
      const found = await admin('GET', '/v1/jobs?q=P-B&limit=1');
      expect(found.json.jobs.map((job) => job.jobId)).toEqual(['p-b']);
      const tail = await admin('GET', '/v1/jobs?q=p-a&project=pages');
      expect(tail.json.jobs.map((job) => job.jobId)).toEqual(['p-a']);
      const byProject = await admin('GET', '/v1/jobs?q=PAGES&limit=100');
      expect(byProject.json.jobs.map((job) => job.jobId)).toEqual(expected);
      // A percent sign is a percent sign.
      expect((await admin('GET', '/v1/jobs?q=%25')).json.jobs).toEqual([]);
      const bad = await admin('GET', '/v1/jobs?cursor=yesterday');
      expect(bad.status).toBe(400);
    });

    it('exposes Prometheus metrics: appends by type, their latency, streams, lag and active jobs', async () => {
      const response = await fetch(`${base}/metrics`, {
        headers: { authorization: `Bearer ${readToken}` },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await response.text();
      expect(text).toMatch(/^headway_events_appended_total\{type="item\.completed"\} [1-9]\d*$/m);
      expect(text).toMatch(/^headway_events_appended_total\{type="custom"\} [1-9]\d*$/m);
      expect(text).toMatch(/^headway_append_duration_seconds_count [1-9]\d*$/m);
      expect(text).toMatch(/^headway_open_streams 0$/m);
      expect(text).toMatch(/^headway_projection_lag_events\{projection="jobs"\} \d+$/m);
      expect(text).toMatch(/^headway_active_jobs [1-9]\d*$/m);
      expect(text).toMatch(/^headway_process_resident_memory_bytes \d+/m);
    });

    it('property: malformed bodies and query strings get a 4xx with a message and change nothing', async () => {
      const before = await ledger.readAll();
      const bodies = fc.oneof(
        fc.anything(),
        fc.record({ events: fc.anything() }),
        fc.record(
          {
            events: fc.array(
              fc.record({ type: fc.string(), data: fc.anything() }, { requiredKeys: [] }),
              { maxLength: 5 },
            ),
            expectedVersion: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
          },
          { requiredKeys: [] },
        ),
      );
      await fc.assert(
        fc.asyncProperty(bodies, async (requestBody) => {
          const response = await call('POST', '/v1/jobs/web-1/events', {
            token: adminToken,
            rawBody: JSON.stringify(requestBody) ?? 'undefined',
          });
          // A body that happens to be a valid batch of custom events may land; nothing else may.
          if (response.status === 200) return;
          expect(response.status).toBeGreaterThanOrEqual(400);
          expect(response.status).toBeLessThan(500);
          expect(response.json.error.message.length).toBeGreaterThan(0);
        }),
        { numRuns: 60 },
      );
      const queries = fc.dictionary(
        fc.constantFrom('project', 'status', 'active', 'limit', 'kind', 'bogus', 'parentJobId'),
        fc.string({ maxLength: 30 }),
      );
      await fc.assert(
        fc.asyncProperty(queries, async (query) => {
          const response = await admin('GET', `/v1/jobs?${new URLSearchParams(query).toString()}`);
          expect([200, 400]).toContain(response.status);
          if (response.status === 400)
            expect(response.json.error.message.length).toBeGreaterThan(0);
        }),
        { numRuns: 60 },
      );
      const after = await ledger.readAll();
      const landed = after.events.slice(before.events.length);
      // Whatever landed was a whole valid batch of x.* events; the earlier log is untouched.
      expect(after.events.slice(0, before.events.length)).toEqual(before.events);
      expect(landed.every((event) => event.type.startsWith('x.'))).toBe(true);
    });
  });
}

describe('HTTP API without tokens', () => {
  it('answers only its own machine: a foreign Host or Origin is refused', async () => {
    const ledger = await openLedger({ dataDir: 'memory://' });
    const server = await createServer({ ledger });
    try {
      const base = await listen(server);
      expect((await fetch(`${base}/v1/jobs`)).status).toBe(200);
      const { request } = await import('node:http');
      const statusWith = (headers: Record<string, string>) =>
        new Promise<number | undefined>((resolve, reject) => {
          const sent = request(`${base}/v1/jobs`, { headers }, (response) => {
            response.resume();
            resolve(response.statusCode);
          });
          sent.on('error', reject);
          sent.end();
        });
      // DNS rebinding: a page on evil.example resolved to 127.0.0.1.
      expect(await statusWith({ host: 'evil.example:4680' })).toBe(403);
      expect(await statusWith({ origin: 'http://evil.example' })).toBe(403);
      const { port } = new URL(base);
      expect(await statusWith({ origin: `http://127.0.0.1:${port}` })).toBe(200);
    } finally {
      await server.close();
      await ledger.close();
    }
  });

  it('refuses an empty token table, which would open every route', () => {
    expect(() => parseTokens('{}')).toThrow(/HEADWAY_TOKENS: .*expected at least one token/);
  });
});

describe('HTTP API with its database unreachable', () => {
  it('answers 503 with Retry-After, on reads, appends and health', async () => {
    // Nothing listens on port 1; the pool connects lazily, so the ledger opens.
    const ledger = await openLedger({
      databaseUrl: 'postgres://postgres@127.0.0.1:1/none',
      migrate: false,
    });
    const server = await createServer({ ledger });
    try {
      const call = clientOf(await listen(server));
      for (const [method, path, requestBody] of [
        ['GET', '/v1/jobs/any'],
        ['GET', '/v1/jobs'],
        ['POST', '/v1/jobs/any/events', { events: [{ type: 'x.ping', data: {} }] }],
        ['GET', '/health'],
      ] as [string, string, unknown?][]) {
        const response = await call(
          method,
          path,
          requestBody === undefined ? {} : { body: requestBody },
        );
        expect(response.status, `${method} ${path}`).toBe(503);
        expect(response.headers.get('retry-after')).toBe('2');
      }
    } finally {
      await server.close();
      await ledger.close();
    }
  });
});
