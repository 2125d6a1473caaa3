import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ItemCounts } from '../projections/job-progress.ts';
import { openLedger } from '../src/open-ledger.ts';
import { jsonOf, runHeadway } from './cli-runner.ts';

/** Runs the real `headway` bin on the embedded store in `dataDir`. */
const headway = (dataDir: string, ...args: string[]) =>
  runHeadway(['--data-dir', dataDir, ...args]);
const json = jsonOf;

// Each command is a process that opens PGlite afresh: seconds each on a busy 2-core machine.
describe('headway CLI on the embedded store', { timeout: 180_000 }, () => {
  let folder: string;
  let store: string;
  let jobId: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-cli-'));
    store = join(folder, 'store');
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('runs the demo to the end: crash, resume, summary, failure groups and location', async () => {
    const run = await headway(store, 'demo', '--items', '300', '--seed', '7');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /worker crashed after \d+ documents; restarting from the last checkpoint/,
    );
    expect(run.stdout).toMatch(
      /demo crawl completed: [\d,]+ ok, \d+ failed, \d+ skipped of 300 in /,
    );
    expect(run.stdout).toContain('ETA as the run went:');
    expect(run.stdout).toContain('Failure groups:');
    expect(run.stdout).toContain(`Stored in the embedded store at ${store}`);
    jobId = /as job ([0-9a-f-]{36})\./.exec(run.stdout)![1]!;
  });

  it('lists the job, and a second demo adds another beside it', async () => {
    await headway(store, 'demo', '--items', '40', '--no-crash', '--seed', '3');
    const jobs = json<{ jobId: string; status: string; name: string }[]>(
      await headway(store, 'jobs', '--json'),
    );
    expect(jobs).toHaveLength(2);
    expect(jobs[1]).toMatchObject({ jobId, status: 'completed', name: 'demo crawl' });
    const table = await headway(store, 'jobs');
    expect(table.stdout.split('\n')[0]).toMatch(/^JOB\s+NAME\s+KIND\s+PROJECT\s+STATUS/);
  });

  it('shows the status with conserved counts', async () => {
    const { progress } = json<{
      progress: {
        status: string;
        total: number;
        percent: number;
        counts: ItemCounts;
      };
    }>(await headway(store, 'status', jobId, '--json'));
    expect(progress).toMatchObject({ status: 'completed', total: 300, percent: 100 });
    const { planned, pending, inFlight, completed, failed, skipped } = progress.counts;
    expect(planned).toBe(300);
    expect(pending + inFlight + completed + failed + skipped).toBe(planned);
    const human = await headway(store, 'status', jobId);
    expect(human.stdout).toContain('demo crawl (crawl, project demo): completed');
    // Each stage with its own counts; a completed job has nothing pending anywhere.
    expect(human.stdout).toMatch(
      /^ {4}process +\S+ +[\d,]+ of [\d,]+, failed \d+, skipped \d+, in flight 0, pending 0$/m,
    );
  });

  it('filters the timeline', async () => {
    const page = json<{ events: { type: string }[] }>(
      await headway(store, 'timeline', jobId, '--type', 'item.failed', '--limit', '5', '--json'),
    );
    expect(page.events.length).toBeGreaterThan(0);
    expect(new Set(page.events.map((event) => event.type))).toEqual(new Set(['item.failed']));
    const human = await headway(store, 'timeline', jobId, '--type', 'items.released');
    expect(human.stdout).toMatch(
      /items\.released \d+ items: lease expired: restarted after a worker crash/,
    );
  });

  it('exports the failure report', async () => {
    const file = join(folder, 'failures.json');
    const run = await headway(store, 'failures', jobId, '--export', file);
    expect(run.code).toBe(0);
    const report = JSON.parse(await readFile(file, 'utf8')) as {
      jobId: string;
      groups: { category: string; count: number }[];
    };
    expect(report.jobId).toBe(jobId);
    expect(report.groups.length).toBeGreaterThan(0);
    expect(run.stdout).toContain('retry candidates');
  });

  it('exports and imports into a fresh store with identical projections, idempotently', async () => {
    const file = join(folder, 'all.ndjson');
    expect((await headway(store, 'export', '--all', '--output', file)).code).toBe(0);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const fresh = join(folder, 'fresh');
    const imported = json<{ events: number; streams: number }>(
      await headway(fresh, 'import', file, '--json'),
    );
    expect(imported).toEqual({
      events: lines.length,
      streams: 2,
      imported: lines.length,
      alreadyPresent: 0,
    });
    // Importing again writes nothing, and says so.
    expect(json(await headway(fresh, 'import', file, '--json'))).toEqual({
      events: lines.length,
      streams: 2,
      imported: 0,
      alreadyPresent: lines.length,
    });
    const countEvents = async (dir: string) =>
      json<{ events: number }[]>(await headway(dir, 'jobs', '--json')).reduce(
        (sum, job) => sum + job.events,
        0,
      );
    expect(await countEvents(fresh)).toBe(lines.length);

    const original = json<Record<string, unknown>>(await headway(store, 'status', jobId, '--json'));
    const copy = json<Record<string, unknown>>(await headway(fresh, 'status', jobId, '--json'));
    expect(copy.progress).toEqual(original.progress);
    expect(copy.summary).toEqual(original.summary);
    const failures = async (dir: string) => {
      const report = json<Record<string, unknown>>(await headway(dir, 'failures', jobId, '--json'));
      delete report.generatedAt;
      return report;
    };
    expect(await failures(fresh)).toEqual(await failures(store));
  });

  it('says how many imported events were new, and fails on a reused id with other content', async () => {
    const target = join(folder, 'import-target');
    const event = (version: number, eventId: string, data: Record<string, unknown>) =>
      JSON.stringify({
        streamId: 'imported-job',
        version,
        eventId,
        type: version === 1 ? 'job.started' : 'item.completed',
        schemaVersion: 1,
        data,
        metadata: {},
        occurredAt: '2026-11-23T10:00:00.000Z',
        recordedAt: '2026-11-23T10:00:00.000Z',
        position: String(version),
      });
    const startedId = '6a1f3b0e-1c2d-4e5f-8a9b-000000000001';
    const started = { name: 'copy', kind: 'crawl', project: 'web' };
    const file = join(folder, 'two.ndjson');
    await writeFile(
      file,
      `${event(1, startedId, started)}\n${event(2, '6a1f3b0e-1c2d-4e5f-8a9b-000000000002', { itemId: 'a' })}\n`,
    );
    const first = await headway(target, 'import', file);
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe(
      `Imported 2 new events of 2 read (1 job) into ${target}; 0 were there already.\n`,
    );
    const again = await headway(target, 'import', file);
    expect(again.stdout).toBe(
      `Imported 0 new events of 2 read (1 job) into ${target}; 2 were there already.\n`,
    );

    const changed = join(folder, 'changed.ndjson');
    await writeFile(changed, `${event(1, startedId, { ...started, name: 'renamed' })}\n`);
    const conflict = await headway(target, 'import', changed);
    expect(conflict.code).toBe(1);
    expect(conflict.stdout).toBe('');
    expect(conflict.stderr).toBe(
      `headway: Stream 'imported-job': event id ${startedId} was appended before with other data; a retry must repeat its events unchanged, and a new event needs a new id (idempotency_conflict)\n`,
    );
  });

  it('rejects bad input with one clear line and exit code 1, changing nothing', async () => {
    const missing = await headway(store, 'status', 'no-such-job');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("headway: Job 'no-such-job' was not found (not_found)\n");

    const badLimit = await headway(store, 'timeline', jobId, '--limit', 'lots');
    expect(badLimit.code).toBe(1);
    expect(badLimit.stderr).toContain("expected a whole number >= 1, received 'lots'");

    const before = json<unknown[]>(await headway(store, 'jobs', '--json'));
    const bad = join(folder, 'bad.ndjson');
    const good = {
      streamId: 'imported',
      version: 1,
      eventId: '6a1f3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
      type: 'job.started',
      schemaVersion: 1,
      data: { name: 'n', kind: 'k', project: 'p' },
      occurredAt: '2026-11-01T00:00:00.000Z',
    };
    const broken = {
      ...good,
      version: 2,
      eventId: '7a1f3b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
      type: 'item.completed',
      data: { itemId: 7 },
    };
    await writeFile(bad, `${JSON.stringify(good)}\n${JSON.stringify(broken)}\n`);
    const rejected = await headway(store, 'import', bad);
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toMatchInlineSnapshot(`
      "headway: events[1].data.itemId: Invalid input: expected string, received number (invalid_event)
      "
    `);
    expect(json<unknown[]>(await headway(store, 'jobs', '--json'))).toEqual(before);
  });

  it('keeps a --schema apart from the default tables', async () => {
    const defaultJobs = json<unknown[]>(await headway(store, 'jobs', '--json'));
    const run = await headway(store, '--schema', 'sandbox', 'demo', '--items', '20', '--no-crash');
    expect(run.code).toBe(0);
    const sandboxJobs = json<{ name: string }[]>(
      await headway(store, '--schema', 'sandbox', 'jobs', '--json'),
    );
    expect(sandboxJobs.map((job) => job.name)).toEqual(['demo crawl']);
    expect(json<unknown[]>(await headway(store, 'jobs', '--json'))).toEqual(defaultJobs);
    const bad = await headway(store, '--schema', 'Not-A-Name', 'jobs');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /schema: expected a lower-case SQL identifier, received "Not-A-Name"/,
    );
  });

  it('refuses a second process on the same embedded store', async () => {
    const holder = await openLedger({ dataDir: store });
    try {
      const run = await headway(store, 'jobs');
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/is open in another process.*\(store_busy\)/);
    } finally {
      await holder.close();
    }
  });
});
