import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summarize, jobSummary } from '../projections/job-summary.ts';
import { createClient } from '../src/client/index.ts';
import type { HeadwayClient } from '../src/client/index.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { createServer } from '../src/server/server.ts';
import { listenOnLoopback } from './listen.ts';

// The client's reads answer what the ledger answers, typed again (times as Dates,
// positions as bigints), and an unknown job is null.

describe('client reads', () => {
  let ledger: Ledger;
  let server: FastifyInstance;
  let client: HeadwayClient;

  beforeAll(async () => {
    ledger = await openLedger({ dataDir: 'memory://' });
    const crawl = ledger.job('crawl-1');
    await crawl.start({ name: 'crawl', kind: 'crawl', project: 'web', total: 3 });
    await crawl.itemCompleted('a', { durationMs: 50 });
    await crawl.itemFailed('b', new Error('ECONNRESET while reading b'));
    const other = ledger.job('other-1');
    await other.start({ name: 'other', kind: 'index', project: 'shop' });
    server = await createServer({ ledger });
    client = createClient({ url: await listenOnLoopback(server) });
  });
  afterAll(async () => {
    await server.close();
    await ledger.close();
  });

  it('lists jobs as ledger.jobs does, filtered alike', async () => {
    const page = await client.jobs({ project: 'web', status: ['running'], limit: 10 });
    expect(page.nextCursor).toBeNull();
    expect(page.jobs.map((job) => job.jobId)).toEqual(['crawl-1']);
    expect(page.jobs[0]!.progress).toEqual((await ledger.jobs({ project: 'web' }))[0]!.progress);
    expect((await client.jobs({ limit: 1 })).nextCursor).not.toBeNull();
  });

  it("reads a job's summary and failure report; null for an unknown job", async () => {
    expect(await client.summary('crawl-1')).toEqual({
      jobId: 'crawl-1',
      ...summarize(await ledger.project('crawl-1', jobSummary)),
    });
    const report = await client.failures('crawl-1');
    expect(report).toMatchObject({
      jobId: 'crawl-1',
      totalFailures: 1,
      byCategory: { network: 1 },
    });
    expect(await client.summary('no-such-job')).toBeNull();
    expect(await client.failures('no-such-job')).toBeNull();
  });

  it("reads one job's timeline or every job's, typed as the ledger reads it", async () => {
    const mine = await client.timeline({ jobId: 'crawl-1', types: ['item.*'] });
    const expected = await ledger.timeline({ jobId: 'crawl-1', types: ['item.*'] });
    expect(mine!.events.map(({ summary: _, ...event }) => event)).toEqual(expected.events);
    expect(mine!.events[0]!.occurredAt).toBeInstanceOf(Date);
    expect(mine!.events[1]!.summary).toContain('ECONNRESET');
    const all = await client.timeline({ order: 'desc', limit: 1 });
    expect(all!.events.map((event) => [event.streamId, event.type])).toEqual([
      ['other-1', 'job.started'],
    ]);
    expect(all!.nextCursor).not.toBeNull();
    expect(await client.timeline({ jobId: 'no-such-job' })).toBeNull();
  });

  it('reads the projections as GET /v1/projections lists them', async () => {
    const rows = await client.projections();
    expect(rows.map((row) => row.name)).toEqual(
      (await ledger.projectionStatus()).map((status) => status.name),
    );
    expect(rows[0]).toMatchObject({ codeVersion: expect.any(Number), lag: expect.any(Number) });
  });
});
