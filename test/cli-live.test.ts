import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareLogCursors, formatLogCursor, parseLogCursor } from '../src/cursors.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { jobsProjection } from '../src/persisted/persisted-projection.ts';
import { cliEnv, headwayBin, jsonOf, runHeadway } from './cli-runner.ts';
import { postgresAvailable, postgresUrl } from './stores.ts';

const headway = (...args: string[]) => runHeadway(args);
const json = jsonOf;

/** A running `headway` whose complete stdout lines are collected as they come. */
class Running {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private partial = '';

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [headwayBin, ...args], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      // A line cut short by a kill has no newline yet; it never counts.
      this.partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Waits until at least `count` lines were printed. */
  async waitForLines(count: number, timeoutMs = 30_000): Promise<void> {
    await until(
      () => this.lines.length >= count,
      timeoutMs,
      () => {
        return `${this.lines.length} of ${count} lines; stderr: ${this.stderr}`;
      },
    );
  }
}

async function until(check: () => boolean, timeoutMs: number, describe: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface TailLine {
  cursor: string;
  eventId: string;
  streamId: string;
  type: string;
  position: string;
}

describe.skipIf(!postgresAvailable)('headway tail and watch on PostgreSQL', () => {
  // The CLI takes no schema, so the suite gets a database of its own.
  const database = `hw_cli_${randomBytes(6).toString('hex')}`;
  const url = new URL(postgresUrl);
  url.pathname = `/${database}`;
  const databaseUrl = url.toString();
  let ledger: Ledger;

  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    await admin(`create database ${database}`);
    ledger = await openLedger({ databaseUrl });
  });
  afterAll(async () => {
    await ledger?.close();
    await admin(`drop database if exists ${database} with (force)`);
  });

  it('tails concurrent appends across a SIGKILL and a restart with no gap and no repeat', async () => {
    const appended: string[] = [];
    let producing = true;
    // Four writers at once, some of them writing two streams in one transaction, so
    // transactions commit out of the order they started in.
    const writer = async (worker: number) => {
      for (let round = 0; producing; round += 1) {
        const events = (n: number) =>
          Array.from({ length: n }, (_, index) => ({
            type: 'x.tick' as const,
            data: { worker, round, index },
            eventId: randomUUID(),
          }));
        const batch = events(1 + (round % 3));
        if (round % 4 === 3) {
          const other = events(1);
          await ledger.appendMany([
            { streamId: `tail-${worker}`, events: batch },
            { streamId: `tail-shared-${round % 2}`, events: other },
          ]);
          appended.push(...batch.map((event) => event.eventId), other[0]!.eventId);
        } else {
          await ledger.append(`tail-${worker}`, batch);
          appended.push(...batch.map((event) => event.eventId));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    // Every stream's job is started before the writers append to it.
    const starts = await ledger.appendMany(
      ['tail-0', 'tail-1', 'tail-2', 'tail-3', 'tail-shared-0', 'tail-shared-1'].map(
        (streamId) => ({
          streamId,
          events: [{ type: 'job.started', data: { name: streamId, kind: 'tail', project: 'cli' } }],
        }),
      ),
    );
    appended.push(...starts.map((result) => result.events[0]!.eventId));
    const first = new Running(['--database-url', databaseUrl, 'tail', '--json', '--from-start']);
    const writers = Promise.all([0, 1, 2, 3].map(writer));
    let second: Running | undefined;
    try {
      await first.waitForLines(40);
      first.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');
      const printedBefore = first.lines.map((line) => JSON.parse(line) as TailLine);
      const resumeAfter = printedBefore.at(-1)!.cursor;

      // Events keep arriving while no tail runs.
      const missed = appended.length + 30;
      await until(
        () => appended.length >= missed,
        30_000,
        () => 'appends stalled',
      );
      second = new Running([
        '--database-url',
        databaseUrl,
        'tail',
        '--json',
        '--after',
        resumeAfter,
      ]);
      await second.waitForLines(20);
      producing = false;
      await writers;

      await second.waitForLines(appended.length - printedBefore.length);
      second.kill('SIGTERM');
      // The tail stops cleanly on SIGTERM.
      expect(await second.exited).toEqual({ code: 0, signal: null });
      expect(second.stderr).toBe('');

      const printed = [
        ...printedBefore,
        ...second.lines.map((line) => JSON.parse(line) as TailLine),
      ];
      const truth: { eventId: string; cursor: string }[] = [];
      for await (const page of ledger.readAllBatches()) {
        for (const event of page.events) {
          truth.push({ eventId: event.eventId, cursor: formatLogCursor(event) });
        }
      }
      expect(new Set(truth.map((event) => event.eventId))).toEqual(new Set(appended));
      expect(truth).toHaveLength(appended.length);
      // Every event exactly once, in cursor order, each with the cursor the log gives it.
      expect(printed.map((line) => ({ eventId: line.eventId, cursor: line.cursor }))).toEqual(
        truth,
      );
      for (let index = 1; index < printed.length; index += 1) {
        expect(
          compareLogCursors(
            parseLogCursor(printed[index - 1]!.cursor),
            parseLogCursor(printed[index]!.cursor),
          ),
        ).toBe(-1);
      }
      expect(printedBefore.length).toBeGreaterThanOrEqual(40);
      expect(second.lines.length).toBeGreaterThan(30);
    } finally {
      producing = false;
      first.kill('SIGKILL');
      second?.kill('SIGKILL');
      await writers;
    }
  });

  it('watches a job live without a terminal and exits 0 with a final 100% line', async () => {
    const job = ledger.job();
    await job.start({
      name: 'watched',
      kind: 'test',
      project: 'cli',
      total: 20,
      stages: [{ name: 'fetch' }, { name: 'parse' }],
    });
    await job.plan(Array.from({ length: 20 }, (_, index) => `w${index}`));
    await job.stage('fetch', { total: 20 });
    const watch = new Running([
      '--database-url',
      databaseUrl,
      'watch',
      job.jobId,
      '--interval',
      '100',
    ]);
    try {
      await watch.waitForLines(1);
      expect(watch.lines[0]).toMatch(/ running 0\.0% 0\/20 \| stage fetch 0\.0% /);
      for (let index = 0; index < 20; index += 1) {
        if (index === 10) await job.stage('parse', { total: 10 });
        if (index % 7 === 3) await job.itemFailed(`w${index}`, new Error('ECONNRESET'));
        else await job.itemCompleted(`w${index}`, { durationMs: 5 });
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      await job.complete();
      expect(await watch.exited).toEqual({ code: 0, signal: null });
      expect(watch.stderr).toBe('');
      expect(watch.lines.length).toBeGreaterThan(1);
      expect(watch.lines.at(-1)).toMatch(/ completed 100\.0% 20\/20 \| .* \| done \| failed 3$/);
    } finally {
      watch.kill('SIGKILL');
    }
  });
});

describe('headway projections, rebuild, resume and watch on the embedded store', () => {
  let folder: string;
  let store: string;
  let events: number;
  let lastCursor: string;
  const crashed = 'crashed-job';
  const finished = 'finished-job';

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-cli-live-'));
    store = join(folder, 'store');
    const ledger = await openLedger({ dataDir: store });
    try {
      const job = ledger.job(crashed);
      await job.start({ name: 'crashed', kind: 'test', project: 'cli', total: 8 });
      await job.plan(Array.from({ length: 8 }, (_, index) => `c${index}`));
      for (const itemId of ['c0', 'c1', 'c2']) await job.itemCompleted(itemId);
      await job.itemFailed('c3', new Error('ECONNRESET'));
      await job.itemStarted('c4', { leaseMs: 3_600_000 });
      await job.itemStarted('c5');
      await job.checkpoint({ page: 3 }, 'after c3');
      const done = ledger.job(finished);
      await done.start({ name: 'finished', kind: 'test', project: 'cli', total: 2 });
      await done.itemCompleted('f0');
      await done.itemCompleted('f1');
      await done.complete();
      const page = await ledger.readAll();
      events = page.events.length;
      lastCursor = formatLogCursor(page.next);
    } finally {
      await ledger.close();
    }
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('lists the projections before and after catching up, then rebuilds them', async () => {
    const stored = await headway('--data-dir', store, 'projections', '--no-catch-up');
    expect(stored.code).toBe(0);
    expect(stored.stdout.split('\n')[0]).toMatch(
      /^PROJECTION\s+CODE\s+GENERATION\s+STATUS\s+CHECKPOINT\s+EVENTS\s+LAG\s+UPDATED$/,
    );
    expect(stored.stdout.split('\n')[1]).toMatch(
      new RegExp(
        `^jobs\\s+v${jobsProjection.version}\\s+–\\s+not built\\s+–\\s+0\\s+${events}\\s+–$`,
      ),
    );

    const caughtUp = json<Record<string, unknown>[]>(
      await headway('--data-dir', store, 'projections', '--json'),
    );
    expect(caughtUp).toEqual([
      {
        name: 'jobs',
        codeVersion: jobsProjection.version,
        generation: 1,
        status: 'active',
        cursor: lastCursor,
        events,
        lag: 0,
        lagCapped: false,
        updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown,
      },
    ]);

    const rebuilt = await headway('--data-dir', store, 'rebuild', 'jobs');
    expect(rebuilt.stderr).toBe('');
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(
      new RegExp(
        `^Rebuilt jobs: generation 2 \\(code v${jobsProjection.version}\\), ${events} events, checkpoint ${lastCursor}\\.\nTook [\\d.]+ (ms|s)\\.\n$`,
      ),
    );
  });

  it('resumes a crashed job: releases the lease-less item, keeps the leased one', async () => {
    const point = json<{
      status: string;
      checkpoint: unknown;
      checkpointNote: string;
      pending: string[];
      expired: string[];
      inFlight: string[];
      version: number;
    }>(await headway('--data-dir', store, 'resume', crashed, '--reason', 'crash', '--json'));
    expect({ ...point, pending: [...point.pending].sort() }).toEqual({
      jobId: crashed,
      status: 'running',
      checkpoint: { page: 3 },
      checkpointNote: 'after c3',
      pending: ['c5', 'c6', 'c7'],
      expired: ['c5'],
      inFlight: ['c4'],
      // 9 events before, then items.released and job.resumed.
      version: 11,
    });

    // With a cut-off past the lease, the leased item is released too.
    const human = await headway(
      '--data-dir',
      store,
      'resume',
      crashed,
      '--lease-expired-before',
      new Date(Date.now() + 2 * 3_600_000).toISOString(),
    );
    expect(human.stderr).toBe('');
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`Resumed ${crashed} (was running); now at version 13.`);
    expect(lines[1]).toBe('  checkpoint: {"page":3} (after c3)');
    expect(lines[2]).toMatch(/^ {2}pending 4: (c\d, ){3}c\d$/);
    expect(lines.slice(3)).toEqual(['  expired, released 1: c4', '  in flight 0']);
  });

  it('watches a finished job: one final line, exit 0; an unknown job exits 1', async () => {
    const watch = await headway('--data-dir', store, 'watch', finished);
    expect(watch.stderr).toBe('');
    expect(watch.code).toBe(0);
    expect(watch.stdout).toMatch(
      /^\d\d:\d\d:\d\d completed 100\.0% 2\/2 \| .* \| done \| failed 0\n$/,
    );

    const unknown = await headway('--data-dir', store, 'watch', 'no-such-job');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("headway: Job 'no-such-job' was not found (not_found)\n");
  });
});
