import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { NotFoundError } from '../src/errors.ts';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { storesUnderTest } from './stores.ts';

/** What the assertions read of an answer. */
interface Answer {
  status: number;
  json: {
    [field: string]: unknown;
    error: { code: string; message: string; issues?: { path: string; message: string }[] };
  };
}

const bodyLimitBytes = 64 * 1024;
/** A message that says what was expected and then what was received. */
const expectedThenReceived = /expected .+received/s;

/** The same request as bytes on a fresh socket, for what fetch will not send; the raw answer. */
async function rawRequest(port: number, text: string): Promise<{ status: number; json: unknown }> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => socket.end(text));
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  const answer = Buffer.concat(chunks).toString('utf8');
  const [head = '', payload = ''] = answer.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), json: JSON.parse(payload) as unknown };
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`tracker API: ${store.name}`, () => {
    let ledger: Ledger;
    let server: FastifyInstance;
    let base: string;
    let port: number;

    const call = async (
      method: string,
      path: string,
      options: { body?: unknown; rawBody?: string; contentType?: string | null } = {},
    ): Promise<Answer> => {
      const headers: Record<string, string> = {};
      let payload: string | undefined;
      if (options.body !== undefined || options.rawBody !== undefined) {
        payload = options.rawBody ?? JSON.stringify(options.body);
        if (options.contentType !== null) {
          headers['content-type'] = options.contentType ?? 'application/json';
        }
      }
      const response = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
      });
      const text = await response.text();
      return { status: response.status, json: JSON.parse(text) as Answer['json'] };
    };
    const append = (jobId: string, events: EventInput[]) => ledger.append(jobId, events);
    const started = (project: string, extra: Record<string, unknown> = {}): EventInput => ({
      type: 'job.started',
      data: { name: 'job', kind: 'crawl', project, ...extra },
    });

    beforeAll(async () => {
      ledger = await store.open();
      server = await createServer({ ledger, bodyLimitBytes });
      await server.listen({ host: '127.0.0.1', port: 0 });
      port = (server.server.address() as AddressInfo).port;
      base = `http://127.0.0.1:${port}`;

      await append('batch-1', [
        started('ml', { total: 5, stages: [{ name: 'fetch' }, { name: 'embed' }] }),
        {
          type: 'items.planned',
          data: {
            items: [
              { id: 'q', group: 'train', type: 'pdf' },
              { id: 'b', group: 'train', type: 'html' },
              { id: 'x/1 ü', group: 'test', type: 'pdf' },
              { id: 'a', group: 'test' },
            ],
          },
        },
        { type: 'stage.started', data: { stage: 'fetch' } },
        { type: 'item.started', data: { itemId: 'q', worker: 'w-1', leaseMs: 60_000 } },
        { type: 'item.started', data: { itemId: 'b', worker: 'w-2', leaseMs: 1 } },
        { type: 'item.completed', data: { itemId: 'x/1 ü', durationMs: 120 } },
      ]);
      // Part of the log in the persisted `jobs` projection, part past its checkpoint.
      await ledger.catchUpProjections();
      await append('batch-1', [
        { type: 'items.planned', data: { items: [{ id: 'c', group: 'train' }, { id: 'q' }] } },
        { type: 'stage.started', data: { stage: 'embed' } },
        {
          type: 'item.failed',
          data: {
            itemId: 'a',
            durationMs: 30,
            error: { message: 'HTTP 503', category: 'network', stage: 'fetch' },
          },
        },
        { type: 'items.released', data: { itemIds: ['q'], reason: 'lease expired' } },
      ]);
      await append('child-1', [started('ml', { parentJobId: 'batch-1' })]);
      await append('child-2', [started('ml', { parentJobId: 'batch-1' })]);
      await append('other-1', [started('web')]);
    });
    afterAll(async () => {
      await server?.close();
      await ledger?.close();
      await store.cleanup();
    });

    it('ledger.item gives one item, and NotFoundError names the job and the item', async () => {
      const item = await ledger.item('batch-1', 'a');
      expect(item).toMatchObject({
        itemId: 'a',
        status: 'failed',
        stage: 'fetch',
        attempts: 0,
        group: 'test',
        durationMs: 30,
        lastError: { message: 'HTTP 503', category: 'network' },
      });
      await expect(ledger.item('batch-1', 'nope')).rejects.toThrow(NotFoundError);
      await expect(ledger.item('batch-1', 'nope')).rejects.toThrow(
        "Item 'nope' of job 'batch-1' was not found",
      );
      await expect(ledger.item('no-job', 'a')).rejects.toThrow("Job 'no-job' was not found");
    });

    it('ledger.jobs and projectOverview narrow to one job with jobId', async () => {
      const jobs = await ledger.jobs({ jobId: 'batch-1' });
      expect(jobs.map((job) => job.jobId)).toEqual(['batch-1']);
      expect(jobs[0]!.progress.counts).toMatchObject({ planned: 5, failed: 1, completed: 1 });
      expect(await ledger.jobs({ jobId: 'batch-1', project: 'web' })).toEqual([]);
      const overview = await ledger.projectOverview({ jobId: 'child-1' });
      expect(overview).toEqual([expect.objectContaining({ project: 'ml', jobs: 1 })]);
    });

    it('GET /v1/projects/:project/progress?operationId= answers the same shape for that one job', async () => {
      const whole = await call('GET', '/v1/projects/ml/progress');
      expect(whole.status).toBe(200);
      expect((whole.json.jobs as { jobId: string }[]).map((job) => job.jobId).sort()).toEqual([
        'batch-1',
        'child-1',
        'child-2',
      ]);

      const one = await call('GET', '/v1/projects/ml/progress?operationId=batch-1');
      expect(one.status).toBe(200);
      expect(Object.keys(one.json).sort()).toEqual(Object.keys(whole.json).sort());
      expect(one.json).toMatchObject({
        project: 'ml',
        projects: [{ project: 'ml', jobs: 1, processed: 2 }],
        jobs: [{ jobId: 'batch-1', progress: { project: 'ml', counts: { planned: 5 } } }],
      });
      expect(one.json.jobs).toHaveLength(1);
      const anywhere = await call('GET', '/v1/projects/all/progress?operationId=other-1');
      expect(anywhere.json).toMatchObject({ jobs: [{ jobId: 'other-1' }] });

      for (const [path, named] of [
        ['/v1/projects/web/progress?operationId=batch-1', "Job 'batch-1' in project 'web'"],
        ['/v1/projects/ml/progress?operationId=no-such-job', "Job 'no-such-job' in project 'ml'"],
        ['/v1/projects/all/progress?operationId=no-such-job', "Job 'no-such-job'"],
      ] as const) {
        const missing = await call('GET', path);
        expect(missing.status).toBe(404);
        expect(missing.json.error).toMatchObject({ code: 'not_found' });
        expect(missing.json.error.message).toContain(named);
      }

      const children = await call('GET', '/v1/projects/ml/progress?parentJobId=batch-1');
      expect((children.json.jobs as { jobId: string }[]).map((job) => job.jobId).sort()).toEqual([
        'child-1',
        'child-2',
      ]);
    });

    it('GET /v1/jobs/:id/items/:itemId says whether one item is processed, with its stage and lease', async () => {
      const done = await call('GET', `/v1/jobs/batch-1/items/${encodeURIComponent('x/1 ü')}`);
      expect(done.status).toBe(200);
      expect(done.json).toMatchObject({
        jobId: 'batch-1',
        itemId: 'x/1 ü',
        status: 'completed',
        processed: true,
        stage: 'fetch',
        type: 'pdf',
        group: 'test',
        durationMs: 120,
        lastError: null,
      });

      const running = await call('GET', '/v1/jobs/batch-1/items/b');
      expect(running.json).toMatchObject({
        status: 'inFlight',
        processed: false,
        attempts: 1,
        worker: 'w-2',
        leaseMs: 1,
        stage: 'fetch',
      });
      expect(running.json.leaseExpiresAt).toBe((running.json.startedAt as number) + 1);

      // Released in the embed stage: pending again, its attempt counted, its lease gone.
      const released = await call('GET', '/v1/jobs/batch-1/items/q');
      expect(released.json).toMatchObject({
        status: 'pending',
        attempts: 1,
        worker: null,
        stage: 'embed',
        planIndex: 0,
        leaseExpiresAt: null,
      });

      const unknownItem = await call('GET', '/v1/jobs/batch-1/items/nope');
      expect(unknownItem.status).toBe(404);
      expect(unknownItem.json.error).toEqual({
        code: 'not_found',
        message: "Item 'nope' of job 'batch-1' was not found",
      });
      const unknownJob = await call('GET', '/v1/jobs/no-such-job/items/a');
      expect(unknownJob.status).toBe(404);
      expect(unknownJob.json.error.message).toContain("Job 'no-such-job'");
    });

    it('lists pending items in plan order, a released item in its first place', async () => {
      const pending = await call('GET', '/v1/jobs/batch-1/items?status=pending');
      expect((pending.json.items as { itemId: string }[]).map((item) => item.itemId)).toEqual([
        'q',
        'c',
      ]);
      const all = await call('GET', '/v1/jobs/batch-1/items');
      expect((all.json.items as { itemId: string }[]).map((item) => item.itemId)).toEqual([
        'q',
        'b',
        'x/1 ü',
        'a',
        'c',
      ]);
    });

    it('GET /v1/jobs/:id/counts counts items by group and by type, each summing to the job', async () => {
      const counts = await call('GET', '/v1/jobs/batch-1/counts');
      expect(counts.status).toBe(200);
      const zero = { pending: 0, inFlight: 0, completed: 0, failed: 0, skipped: 0 };
      expect(counts.json).toEqual({
        jobId: 'batch-1',
        counts: { ...zero, planned: 5, pending: 2, inFlight: 1, completed: 1, failed: 1 },
        groups: [
          { group: 'test', ...zero, planned: 2, completed: 1, failed: 1 },
          { group: 'train', ...zero, planned: 3, pending: 2, inFlight: 1 },
        ],
        types: [
          { type: 'html', ...zero, planned: 1, inFlight: 1 },
          { type: 'pdf', ...zero, planned: 2, pending: 1, completed: 1 },
          { type: null, ...zero, planned: 2, pending: 1, failed: 1 },
        ],
      });
      const status = await call('GET', '/v1/jobs/batch-1');
      expect((status.json.progress as { counts: unknown }).counts).toEqual(counts.json.counts);
      expect((await call('GET', '/v1/jobs/no-such-job/counts')).status).toBe(404);
    });

    it("answers Fastify's own errors in the API's shape, saying what was expected and what was received", async () => {
      const expectError = (answer: Answer, status: number, code: string) => {
        expect(answer.status).toBe(status);
        expect(answer.json.error.code).toBe(code);
        expect(answer.json.error.message).toMatch(expectedThenReceived);
      };
      const events = [{ type: 'x.note', data: {} }];

      const tooLong = await call('GET', `/v1/jobs/${'j'.repeat(5_000)}`);
      expectError(tooLong, 414, 'uri_too_long');
      expect(tooLong.json.error.message).toContain('at most 600 characters');
      expect(tooLong.json.error.message).toContain('5000 characters');

      const plain = await call('POST', '/v1/jobs/batch-1/events', {
        rawBody: JSON.stringify({ events }),
        contentType: 'text/plain',
      });
      expectError(plain, 415, 'unsupported_media_type');
      expect(plain.json.error.message).toContain('application/json');
      expect(plain.json.error.message).toContain('"text/plain"');
      const xml = await call('POST', '/v1/jobs/batch-1/events', {
        rawBody: '<events/>',
        contentType: 'application/xml',
      });
      expectError(xml, 415, 'unsupported_media_type');
      expect(xml.json.error.message).toContain('"application/xml"');

      const route = await call('GET', '/v1/no/such/route');
      expectError(route, 404, 'not_found');
      expect(route.json.error.message).toContain('received GET "/v1/no/such/route"');
      expect(route.json.error.message).toContain('/openapi.json');

      const malformed = await call('POST', '/v1/jobs/batch-1/events', { rawBody: '{"events": [' });
      expectError(malformed, 400, 'invalid_input');
      expect(malformed.json.error.issues).toEqual([
        { path: 'body', message: expect.stringContaining('does not parse') as unknown },
      ]);
      const empty = await call('POST', '/v1/jobs/batch-1/events', { rawBody: '' });
      expectError(empty, 400, 'invalid_input');
      expect(empty.json.error.message).toContain('received an empty body');
      const poisoned = await call('POST', '/v1/jobs/batch-1/events', {
        rawBody: '{"__proto__": {"x": 1}, "events": []}',
      });
      expectError(poisoned, 400, 'invalid_input');
      expect(poisoned.json.error.message).toContain('__proto__');

      const large = await call('POST', '/v1/jobs/batch-1/events', {
        body: { events: [{ type: 'x.big', data: { text: 'x'.repeat(bodyLimitBytes) } }] },
      });
      expectError(large, 413, 'body_too_large');
      expect(large.json.error).toMatchObject({ limitBytes: bodyLimitBytes });
      expect(large.json.error.message).toContain(`at most ${bodyLimitBytes} bytes`);

      for (const [expectedVersion, shown] of [
        ['three', '"three"'],
        [-1, '-1'],
        [1.5, '1.5'],
        [null, 'null'],
      ] as const) {
        const bad = await call('POST', '/v1/jobs/batch-1/events', {
          body: { events, expectedVersion },
        });
        expectError(bad, 400, 'invalid_input');
        expect(bad.json.error.issues).toEqual([
          {
            path: 'body.expectedVersion',
            message: `expected a version (an integer >= 0) or one of any, no_stream, stream_exists, received ${shown}`,
          },
        ]);
      }
      const badQuery = await call('POST', '/v1/jobs/batch-1/events?expectedVersion=latest', {
        body: { events },
      });
      expectError(badQuery, 400, 'invalid_input');
      expect(badQuery.json.error.issues?.[0]).toMatchObject({
        path: 'querystring.expectedVersion',
        message: expect.stringContaining('received "latest"') as unknown,
      });
      const disagree = await call('POST', '/v1/jobs/batch-1/events?expectedVersion=3', {
        body: { events, expectedVersion: 4 },
      });
      expectError(disagree, 400, 'invalid_input');
      const version = await ledger.streamVersion('batch-1');
      const stale = await call('POST', `/v1/jobs/batch-1/events?expectedVersion=${version - 1}`, {
        body: { events },
      });
      expect(stale.status).toBe(409);
      expect(stale.json.error).toMatchObject({
        code: 'concurrency',
        expectedVersion: version - 1,
        actualVersion: version,
      });
      expect(stale.json.error.message).toMatch(/expected version \d+, but its version is \d+/);
      const agreed = await call('POST', `/v1/jobs/batch-1/events?expectedVersion=${version}`, {
        body: { events, expectedVersion: version },
      });
      expect(agreed.status).toBe(200);
      // Nothing refused above was stored.
      expect(await ledger.streamVersion('batch-1')).toBe(version + 1);

      const badUrl = await call('GET', '/v1/jobs/%E0%A4%A');
      expectError(badUrl, 400, 'invalid_input');
      expect(badUrl.json.error.issues?.[0]?.path).toBe('url');
    });

    it('answers what Node refuses before Fastify (huge headers, bytes that are not HTTP) in the same shape', async () => {
      const headers = await rawRequest(
        port,
        `GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      );
      expect(headers.status).toBe(431);
      expect(headers.json).toMatchObject({ error: { code: 'headers_too_large' } });
      expect((headers.json as Answer['json']).error.message).toMatch(expectedThenReceived);

      const garbage = await rawRequest(port, 'NOT HTTP AT ALL\r\n\r\n');
      expect(garbage.status).toBe(400);
      expect(garbage.json).toMatchObject({ error: { code: 'bad_request' } });
      expect((garbage.json as Answer['json']).error.message).toMatch(expectedThenReceived);
    });

    it('publishes the new routes and parameters in the OpenAPI document', async () => {
      const response = await fetch(`${base}/openapi.json`);
      const document = (await response.json()) as {
        paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
      };
      const parameters = (path: string, method: string) =>
        (document.paths[path]?.[method]?.parameters ?? []).map(
          (parameter) => `${parameter.in}:${parameter.name}`,
        );
      expect(parameters('/v1/jobs/{id}/items/{itemId}', 'get').sort()).toEqual([
        'path:id',
        'path:itemId',
      ]);
      expect(parameters('/v1/jobs/{id}/counts', 'get')).toEqual(['path:id']);
      expect(parameters('/v1/projects/{project}/progress', 'get')).toEqual(
        expect.arrayContaining(['query:operationId', 'query:parentJobId', 'path:project']),
      );
      expect(parameters('/v1/jobs/{id}/events', 'post')).toContain('query:expectedVersion');
    });
  });
}
