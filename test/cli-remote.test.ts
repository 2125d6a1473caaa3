import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { runHeadway, serveStore } from './cli-runner.ts';
import type { CliRun } from './cli-runner.ts';

// The read commands print the same whether they open the store themselves or, while
// `headway serve` holds it, read through that server: found in the store's lock, named by
// --url, or by HEADWAY_URL.

/** Records three jobs: one completed with failures, one running, one failed. */
async function recordJobs(ledger: Ledger): Promise<{ done: string; running: string }> {
  const at = (secondsAgo: number) => ({ occurredAt: new Date(Date.now() - secondsAgo * 1_000) });
  const done = ledger.job('crawl-done');
  await done.start({ name: 'crawl', kind: 'crawl', project: 'web', total: 4 }, at(60));
  await done.itemCompleted('a', { durationMs: 120 }, at(58));
  await done.itemFailed('b', new Error('ETIMEDOUT reading b'), {}, at(56));
  await done.itemFailed('c', new Error('HTTP 503 Service Unavailable'), {}, at(54));
  await done.itemSkipped('d', { reason: 'duplicate' }, at(52));
  await done.complete({ pages: 4 }, at(50));

  // Running with a known total: its ETA counts down with the clock (see `normalised`).
  // Its items came 20 s apart until 20 s ago: about 100 s of work are left.
  const running = ledger.job('index-running');
  await running.start({ name: 'index', kind: 'index', project: 'web', total: 10 }, at(100));
  for (let item = 0; item < 4; item += 1) {
    await running.itemCompleted(`doc-${item}`, { durationMs: 900 }, at(80 - item * 20));
  }
  await running.checkpoint({ page: 2 }, 'after page 2', at(20));

  const failed = ledger.job('export-failed');
  await failed.start({ name: 'export', kind: 'export', project: 'shop' }, at(20));
  await failed.fail(new Error('disk full (ENOSPC)'), at(10));
  return { done: 'crawl-done', running: 'index-running' };
}

/**
 * Output with the figures that legitimately change with the clock replaced: the failure
 * report's `generatedAt` (the time it was made) and a running job's ETA (time left as of
 * now, which shrinks between two reads). Nothing else is touched.
 */
function normalised(stdout: string): string {
  return stdout
    .replace(/"generatedAt": "[^"]+"/g, '"generatedAt": "…"')
    .replace(/^ {2}ETA .* at /gm, '  ETA … at ')
    .replace(
      /("etaMs": )[\d.]+(,\s*"range": \{\s*"lowMs": )[\d.]+(,\s*"highMs": )[\d.]+/g,
      '$1…$2…$3…',
    );
}

describe('read commands beside `headway serve`', { timeout: 600_000 }, () => {
  let folder: string;
  let store: string;
  let jobs: { done: string; running: string };
  let cases: string[][];
  const local = new Map<string, CliRun>();

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-remote-'));
    store = join(folder, 'store');
    const ledger = await openLedger({ dataDir: store });
    try {
      jobs = await recordJobs(ledger);
    } finally {
      await ledger.close();
    }
    cases = [
      ['jobs'],
      ['jobs', '--json'],
      ['jobs', '--project', 'web', '--status', 'running,completed'],
      ['jobs', '--kind', 'export', '--json'],
      ['status', jobs.done],
      ['status', jobs.done, '--json'],
      ['status', jobs.running],
      ['status', jobs.running, '--json'],
      ['failures', jobs.done],
      ['failures', jobs.done, '--json'],
      ['timeline', jobs.done],
      ['timeline', jobs.done, '--type', 'item.failed', '--json'],
      ['timeline'],
      ['timeline', '--limit', '3', '--order', 'desc', '--json'],
      ['projections', '--json'],
    ];
    // Each once on the store itself, with no server anywhere.
    for (const args of cases) {
      const run = await runHeadway(['--data-dir', store, ...args]);
      expect(run, args.join(' ')).toMatchObject({ code: 0, stderr: '' });
      local.set(args.join(' '), run);
    }
  }, 300_000); // many CLI runs, one after another: minutes on a loaded machine
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('the local runs say what they should', () => {
    expect(local.get('jobs')!.stdout).toMatch(/^JOB +NAME +KIND/);
    expect(local.get(`status ${jobs.running}`)!.stdout).toMatch(
      /^ {2}ETA \S+.* at [\d.]+ items\/s$/m,
    );
    expect(local.get(`failures ${jobs.done}`)!.stdout).toContain('timeout');
    expect(JSON.parse(local.get('jobs --kind export --json')!.stdout)).toEqual([
      expect.objectContaining({ jobId: 'export-failed', status: 'failed' }),
    ]);
  });

  it('prints the same through the server: found in the lock, by --url, by HEADWAY_URL', async () => {
    const server = await serveStore(store);
    try {
      const ways: [string, (args: string[]) => Promise<CliRun>][] = [
        ['the lock', (args) => runHeadway(['--data-dir', store, ...args])],
        ['--url', (args) => runHeadway(['--data-dir', store, ...args, '--url', server.url])],
        [
          'HEADWAY_URL',
          (args) => runHeadway(['--data-dir', store, ...args], { HEADWAY_URL: server.url }),
        ],
      ];
      for (const [way, run] of ways) {
        // A few at a time: the server answers them side by side.
        for (let start = 0; start < cases.length; start += 4) {
          const batch = cases.slice(start, start + 4);
          const runs = await Promise.all(batch.map(run));
          for (const [index, args] of batch.entries()) {
            const name = `${args.join(' ')} (${way})`;
            const expected = local.get(args.join(' '))!;
            expect(runs[index]!.stderr, name).toBe('');
            expect(runs[index]!.code, name).toBe(0);
            expect(normalised(runs[index]!.stdout), name).toBe(normalised(expected.stdout));
          }
        }
      }
      // An unknown job fails alike, with the same line.
      const missing = await runHeadway(['--data-dir', store, 'status', 'no-such-job']);
      expect(missing).toEqual({
        code: 1,
        stdout: '',
        stderr: "headway: Job 'no-such-job' was not found (not_found)\n",
      });
      // Writes stay local: the store is busy, and the error says where it is served.
      const write = await runHeadway(['--data-dir', store, 'rebuild']);
      expect(write.code).toBe(1);
      expect(write.stderr).toContain(`which serves it at ${server.url}`);
      expect(write.stderr).toMatch(/\(store_busy\)\n$/);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('keeps store_busy when the process holding the store serves nothing', async () => {
    const other = join(folder, 'held');
    const holder = await openLedger({ dataDir: other });
    try {
      const run = await runHeadway(['--data-dir', other, 'jobs']);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(
        new RegExp(
          `^headway: The embedded store at ${other} is open in another process \\(pid ${process.pid} on .*\\(store_busy\\)\\n$`,
        ),
      );
      expect(run.stderr).not.toContain('serves it');
    } finally {
      await holder.close();
    }
  });

  it('fails at once, naming the URL, when nothing listens there', async () => {
    // A port the system just handed out and that is closed again: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    for (const [args, env] of [
      [['status', 'x', '--url', url], {}],
      [['jobs'], { HEADWAY_URL: url }],
    ] as const) {
      const started = Date.now();
      const run = await runHeadway(['--data-dir', store, ...args], env);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(
        new RegExp(
          `^headway: Could not reach the Headway server at ${url} \\(from (--url|HEADWAY_URL)\\): expected an answer, received ECONNREFUSED`,
        ),
      );
    }
    const bad = await runHeadway(['--data-dir', store, 'jobs', '--url', 'localhost:4680']);
    expect(bad.stderr).toBe(
      'headway: --url: expected a server URL such as http://127.0.0.1:4680, received "localhost:4680" (invalid_input)\n',
    );
  });
});
