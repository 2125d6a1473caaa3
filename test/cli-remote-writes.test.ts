import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { jsonOf, runHeadway, serveStore } from './cli-runner.ts';
import type { CliRun, ServedStore } from './cli-runner.ts';

// The commands that record (import, resume, demo) and export work beside a running
// `headway serve` too, through that server, and print what they print on the store itself.

const base = Date.parse('2026-01-05T08:00:00.000Z');
const at = (seconds: number) => ({ occurredAt: new Date(base + seconds * 1_000) });

/** A job that crashed: one item done, a checkpoint, one lease run out, one still held. */
async function recordCrashedJob(ledger: Ledger, jobId: string): Promise<void> {
  const job = ledger.job(jobId);
  await job.start({ name: 'resize', kind: 'image', project: 'shop', total: 5 }, at(0));
  await job.plan(['a', 'b', 'c', 'd', 'e'], at(1));
  await job.itemCompleted('a', { durationMs: 100 }, at(2));
  await job.checkpoint({ page: 1 }, 'after a', at(3));
  await job.itemStarted('b', { leaseMs: 10_000 }, at(4));
  await job.itemStarted('c', { leaseMs: 3_600_000 }, at(4));
}

/** Two jobs with metadata, a failure and a custom event: the file the server imports. */
async function recordOtherJobs(ledger: Ledger): Promise<void> {
  const job = ledger.job('imported-1', { metadata: { actor: 'importer', source: 'test' } });
  await job.start({ name: 'crawl', kind: 'crawl', project: 'web', total: 2 }, at(0));
  await job.itemCompleted('p1', { durationMs: 30 }, at(1));
  await job.itemFailed('p2', new Error('HTTP 503 Service Unavailable'), {}, at(2));
  await job.record([{ type: 'x.note', data: { text: 'kept as is' }, ...at(3) }]);
  await job.complete({ pages: 2 }, at(4));
  const other = ledger.job('imported-2');
  await other.start({ name: 'index', kind: 'index', project: 'web' }, at(5));
}

/** An export line of a job whose first event is not `job.started`. */
const unstartedLine = {
  streamId: 'never-started',
  version: 1,
  eventId: '6a1f3b0e-1c2d-4e5f-8a9b-00000000f002',
  type: 'item.completed',
  schemaVersion: 1,
  data: { itemId: 'a' },
  occurredAt: '2026-01-05T08:00:00.000Z',
};

/** Records in a store of its own and closes it. */
async function recordIn(store: string, record: (ledger: Ledger) => Promise<void>): Promise<void> {
  const ledger = await openLedger({ dataDir: store });
  try {
    await record(ledger);
  } finally {
    await ledger.close();
  }
}

/** NDJSON export lines without what the target store assigns itself. */
function asRecorded(ndjson: string): object[] {
  return ndjson
    .trim()
    .split('\n')
    .map((line) => {
      const { position: _position, recordedAt: _recordedAt, ...event } = JSON.parse(line);
      return event as object;
    });
}

/** A value with job ids and the times a run took on the wall clock replaced. */
function withoutIdsAndTimes(value: unknown, key = ''): unknown {
  if (key === 'jobId') return '…';
  if (typeof value === 'number' && /(At|^at)$/.test(key)) return '…';
  if (Array.isArray(value)) return value.map((element) => withoutIdsAndTimes(element));
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [name, withoutIdsAndTimes(field, name)]),
  );
}

const ok = (run: CliRun, name: string) => {
  expect(run.stderr, name).toBe('');
  expect(run.code, name).toBe(0);
  return run.stdout;
};

describe('export, import, resume and demo beside `headway serve`', { timeout: 600_000 }, () => {
  let folder: string;
  let store: string;
  let importFile: string;
  let unstartedFile: string;
  let server: ServedStore;
  const local = new Map<string, string>();
  const inStore = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runHeadway(['--data-dir', store, ...args], env);
  const resumeArgs = ['--lease-expired-before', new Date(base + 60_000).toISOString()];

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-remote-writes-'));
    store = join(folder, 'store');
    importFile = join(folder, 'other.ndjson');
    unstartedFile = join(folder, 'unstarted.ndjson');
    await recordIn(store, async (ledger) => {
      for (const id of ['resume-here', 'resume-there', 'resume-json-here', 'resume-json-there']) {
        await recordCrashedJob(ledger, id);
      }
      const done = ledger.job('finished');
      await done.start({ name: 'done', kind: 'image', project: 'shop' }, at(0));
      await done.complete({}, at(1));
    });
    await recordIn(join(folder, 'other'), recordOtherJobs);
    const fromOther = await runHeadway(['--data-dir', join(folder, 'other'), 'export', '--all']);
    await writeFile(importFile, ok(fromOther, 'export other'));
    await writeFile(unstartedFile, `${JSON.stringify(unstartedLine)}\n`);
    // What the store itself prints, with no server anywhere.
    local.set('resume', ok(await inStore(['resume', 'resume-here', ...resumeArgs]), 'resume'));
    local.set(
      'resume --json',
      ok(await inStore(['resume', 'resume-json-here', ...resumeArgs, '--json']), 'resume --json'),
    );
    const refused = await inStore(['resume', 'finished']);
    expect(refused.code).toBe(1);
    local.set('resume finished', refused.stderr);
    const unstarted = await inStore(['import', unstartedFile]);
    expect(unstarted.code).toBe(1);
    local.set('import unstarted', unstarted.stderr);
    local.set('export --all', ok(await inStore(['export', '--all']), 'export --all'));
    local.set('export job', ok(await inStore(['export', 'resume-there']), 'export job'));
    const fresh = join(folder, 'fresh');
    const demo = ['--data-dir', fresh, 'demo', '--items', '200', '--seed', '7', '--json'];
    local.set('demo', ok(await runHeadway(demo), 'local demo'));
    // Recording no conditions: the store's exports and the server's must meet byte for byte.
    server = await serveStore(store, ['--no-conditions']);
  }, 300_000); // many CLI runs, one after another: minutes on a loaded machine
  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    await rm(folder, { recursive: true, force: true });
  });

  it('exports byte for byte what the store exports: found in the lock, by --url, by HEADWAY_URL', async () => {
    const ways: [string, (args: string[]) => Promise<CliRun>][] = [
      ['the lock', (args) => inStore(args)],
      ['--url', (args) => inStore([...args, '--url', server.url])],
      ['HEADWAY_URL', (args) => inStore(args, { HEADWAY_URL: server.url })],
    ];
    for (const [way, run] of ways) {
      expect(ok(await run(['export', '--all']), way)).toBe(local.get('export --all'));
      expect(ok(await run(['export', 'resume-there']), way)).toBe(local.get('export job'));
    }
    const output = join(folder, 'served.ndjson');
    expect(ok(await inStore(['export', '--all', '--output', output]), '--output')).toBe('');
    expect(await readFile(output, 'utf8')).toBe(local.get('export --all'));
    expect(local.get('export --all')!.split('\n').length).toBeGreaterThan(20);
  });

  it('pages the new event reads by version and by log cursor, and bounds them', async () => {
    const get = async (path: string) => {
      const response = await fetch(`${server.url}${path}`);
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    const lines = local.get('export --all')!.trim().split('\n');
    let after = '0:0';
    const seen: string[] = [];
    for (;;) {
      const page = await get(`/v1/events?after=${after}&limit=7`);
      expect(page.status).toBe(200);
      const events = page.json.events as { eventId: string }[];
      if (events.length === 0) break;
      seen.push(...events.map((event) => event.eventId));
      after = page.json.nextCursor as string;
    }
    expect(seen).toEqual(lines.map((line) => (JSON.parse(line) as { eventId: string }).eventId));
    const job = await get('/v1/jobs/resume-there/events?fromVersion=3&limit=2');
    expect(job.json).toMatchObject({ jobId: 'resume-there', nextVersion: 5 });
    expect((job.json.events as { version: number }[]).map((event) => event.version)).toEqual([
      3, 4,
    ]);
    expect((await get('/v1/jobs/no-such-job/events')).status).toBe(404);
    expect((await get('/v1/jobs/resume-there/events?limit=1001')).json).toMatchObject({
      error: { code: 'invalid_input' },
    });
    expect((await get('/v1/events?after=later')).status).toBe(400);
    const paths = (await get('/openapi.json')).json.paths as Record<string, object>;
    expect(Object.keys(paths['/v1/jobs/{id}/events']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(paths['/v1/events']!)).toEqual(['get']);
  });

  it('imports through the server once, saying how many events were new, and keeps them exactly', async () => {
    const first = ok(await inStore(['import', importFile]), 'import');
    expect(first).toBe(
      `Imported 6 new events of 6 read (2 jobs) into the Headway server at ${server.url}; 0 were there already.\n`,
    );
    expect(jsonOf(await inStore(['import', importFile, '--json']))).toEqual({
      events: 6,
      streams: 2,
      imported: 0,
      alreadyPresent: 6,
    });
    const file = asRecorded(await readFile(importFile, 'utf8'));
    const stored = [
      ...asRecorded(ok(await inStore(['export', 'imported-1']), 'export imported-1')),
      ...asRecorded(ok(await inStore(['export', 'imported-2']), 'export imported-2')),
    ];
    expect(stored).toEqual(file);
    expect(stored).toContainEqual(
      expect.objectContaining({ type: 'x.note', metadata: { actor: 'importer', source: 'test' } }),
    );
    // A job that never started is refused as the store refuses it, naming its line.
    const unstarted = await inStore(['import', unstartedFile]);
    expect(unstarted).toEqual({ code: 1, stdout: '', stderr: local.get('import unstarted') });
    expect(unstarted.stderr).toContain('line 1 holds its first event');
  });

  it('resumes through the server as the store resumes', async () => {
    const human = ok(await inStore(['resume', 'resume-there', ...resumeArgs]), 'resume');
    expect(human.replaceAll('resume-there', 'resume-here')).toBe(local.get('resume'));
    expect(human).toContain('expired, released 1: b');
    const json = ok(
      await inStore(['resume', 'resume-json-there', ...resumeArgs, '--json']),
      'resume --json',
    );
    expect(json.replaceAll('resume-json-there', 'resume-json-here')).toBe(
      local.get('resume --json'),
    );
    // A refusal reads as the store words it.
    const refused = await inStore(['resume', 'finished']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(local.get('resume finished'));
    expect(refused.stderr).toMatch(/\(job_finished\)\n$/);
  });

  it('runs the demo through the server: the same figures, and the server lists its job', async () => {
    const demo = ['demo', '--items', '200', '--seed', '7', '--json'];
    const remote = jsonOf<{ jobId: string; location: unknown }>(await inStore(demo));
    const here = JSON.parse(local.get('demo')!) as typeof remote;
    expect(remote.location).toEqual({ store: 'server', description: server.url });
    expect(Object.keys(remote)).toEqual(Object.keys(here));
    const figures = ({ location: _location, ...run }: typeof remote) => withoutIdsAndTimes(run);
    expect(figures(remote)).toEqual(figures(here));
    const jobs = jsonOf<{ jobId: string; status: string }[]>(await inStore(['jobs', '--json']));
    expect(jobs).toContainEqual(
      expect.objectContaining({ jobId: remote.jobId, status: 'completed' }),
    );
  });

  it('keeps the commands that need the store to themselves local, saying what to do', async () => {
    for (const args of [['rebuild'], ['migrate'], ['serve', '--port', '0']]) {
      const run = await inStore(args);
      expect(run.code, args.join(' ')).toBe(1);
      expect(run.stderr).toContain(`which serves it at ${server.url}`);
      expect(run.stderr).toContain('stop that server first, or use PostgreSQL');
      expect(run.stderr).toMatch(/\(store_busy\)\n$/);
    }
  });
});
