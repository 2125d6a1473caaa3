import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { jobEta } from '../projections/job-eta.ts';
import type { JobEtaState } from '../projections/job-eta.ts';
import { itemRecord, jobItems } from '../projections/job-items.ts';
import { fold } from '../projections/projection.ts';
import type { Ledger } from '../src/ledger.ts';
import { jobsProjection } from '../src/persisted/persisted-projection.ts';
import { readGenerations, readStateParts } from '../src/persisted/projection-tables.ts';
import { jobFacts } from './arbitraries.ts';
import { storesUnderTest } from './stores.ts';

async function streamOf(ledger: Ledger, jobId: string): Promise<RecordedEvent[]> {
  return ledger.readStream(jobId);
}

/** The stored state of a job in the active generation, every part joined. */
async function storedState(ledger: Ledger, jobId: string): Promise<JobEtaState | null> {
  const active = (await readGenerations(ledger.db, 'jobs')).find((row) => row.status === 'active');
  if (!active) return null;
  const parts = await readStateParts(ledger.db, 'jobs', active.generation, [jobId]);
  return parts.has(jobId) ? jobsProjection.join(parts.get(jobId)!) : null;
}

/** The stored state equals the pure fold of the job's whole stream, items included. */
async function expectStoredEqualsFold(ledger: Ledger, jobIds: readonly string[]) {
  for (const jobId of jobIds) {
    const pure = fold(jobEta, await streamOf(ledger, jobId));
    const stored = await storedState(ledger, jobId);
    // jsonb keeps no undefined fields; a JSON round trip makes the fold comparable.
    expect(stored).toEqual(JSON.parse(JSON.stringify(pure)));
  }
}

/**
 * Waits until gap-safe readers, which runners are, see every committed event: a transaction
 * open anywhere on the server (another suite's, in another schema) holds them back a while.
 */
async function untilAllVisible(ledger: Ledger): Promise<void> {
  const counts = () =>
    sql<{ all: string; visible: string }>`
      select count(*) as all,
             count(*) filter (where transaction_id < pg_snapshot_xmin(pg_current_snapshot())) as visible
        from events`.execute(ledger.db);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { all, visible } = (await counts()).rows[0]!;
    if (all === visible || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const crash = (after: number) => {
  let batches = 0;
  return () => {
    batches += 1;
    if (batches > after) throw new Error('injected crash before commit');
  };
};

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`persisted projections: ${store.name}`, () => {
    afterAll(() => store.cleanup());

    it('a runner that dies inside a batch or between batches leaves no event applied twice', async () => {
      const ledger = await store.open();
      try {
        const jobs = ['a', 'b', 'c'].map((id) => ledger.job(`crash-${id}`));
        for (const job of jobs) {
          await job.start({ name: job.jobId, kind: 'crawl', project: 'crash', total: 40 });
        }
        for (let index = 0; index < 40; index += 1) {
          for (const job of jobs) {
            await job.record([
              { type: 'item.started', data: { itemId: `i${index}` } },
              index % 7 === 0
                ? { type: 'item.failed', data: { itemId: `i${index}`, error: { message: 'x' } } }
                : { type: 'item.completed', data: { itemId: `i${index}`, durationMs: index } },
            ]);
          }
        }
        // Inside a batch: the third batch throws before its commit.
        await untilAllVisible(ledger);
        await expect(
          ledger.catchUpProjections({ batchSize: 25, beforeCommit: crash(2) }),
        ).rejects.toThrow('injected crash');
        const [afterCrash] = await readGenerations(ledger.db, 'jobs');
        expect(afterCrash!.events).toBe(50);
        // Between batches: a runner stopped while following, then more appends.
        const running = ledger.runProjections({ batchSize: 25, pollIntervalMs: 20 });
        await until(async () => (await readGenerations(ledger.db, 'jobs'))[0]?.status === 'active');
        await running.stop();
        for (const job of jobs) await job.complete();
        await untilAllVisible(ledger);
        expect(await ledger.catchUpProjections({ batchSize: 25 })).toEqual(['jobs']);
        const [generation] = await readGenerations(ledger.db, 'jobs');
        const total = (await ledger.readAll()).events.length;
        expect(generation!.events).toBe(total);
        await expectStoredEqualsFold(
          ledger,
          jobs.map((job) => job.jobId),
        );
      } finally {
        await ledger.close();
      }
    });

    it('property: partial runs, crashes and rebuilds end where the pure fold does', async () => {
      const ledger = await store.open();
      let run = 0;
      try {
        const step = fc.oneof(
          fc.record({
            kind: fc.constant('append' as const),
            events: fc.integer({ min: 1, max: 15 }),
          }),
          fc.record({
            kind: fc.constant('catch-up' as const),
            batchSize: fc.integer({ min: 1, max: 30 }),
          }),
          fc.record({ kind: fc.constant('crash' as const), after: fc.integer({ min: 0, max: 3 }) }),
          fc.constant({ kind: 'rebuild' as const }),
        );
        await fc.assert(
          fc.asyncProperty(
            fc.array(jobFacts, { minLength: 1, maxLength: 3 }),
            fc.array(step, { maxLength: 8 }),
            async (jobs, steps) => {
              run += 1;
              const queues = jobs.map((facts, index) => ({
                jobId: `prop-${run}-${index}`,
                facts: [...facts],
              }));
              const appendSome = async (count: number) => {
                for (let index = 0; index < count; index += 1) {
                  const queue = queues.find((entry) => entry.facts.length > 0);
                  if (!queue) return;
                  const event = queue.facts.shift()!;
                  await ledger.append(queue.jobId, [event]);
                }
              };
              for (const action of steps) {
                if (action.kind === 'append') await appendSome(action.events);
                else if (action.kind === 'catch-up') {
                  await ledger.catchUpProjections({ batchSize: action.batchSize });
                } else if (action.kind === 'crash') {
                  await ledger
                    .catchUpProjections({ batchSize: 3, beforeCommit: crash(action.after) })
                    .catch((error: Error) => {
                      if (error.message !== 'injected crash before commit') throw error;
                    });
                } else await ledger.rebuild('jobs');
              }
              await appendSome(Infinity);
              // Answers are current whether or not the runner caught up...
              for (const { jobId } of queues) {
                const pure = fold(jobEta, await streamOf(ledger, jobId));
                const { items: _items, ...progress } = pure.progress;
                const status = await ledger.status(jobId);
                expect(
                  isDeepStrictEqual(status?.progress, JSON.parse(JSON.stringify(progress))),
                ).toBe(true);
              }
              // ...and once it has, the stored states are the fold, items and all.
              await untilAllVisible(ledger);
              await ledger.catchUpProjections({ batchSize: 7 });
              await expectStoredEqualsFold(
                ledger,
                queues.map((queue) => queue.jobId),
              );
            },
          ),
          { numRuns: store.name === 'pglite' ? 12 : 8 },
        );
      } finally {
        await ledger.close();
      }
    });

    it('rebuild folds into a new generation, switches, and drops the old one', async () => {
      const ledger = await store.open();
      try {
        const job = ledger.job('rebuilt');
        await job.start({ name: 'r', kind: 'crawl', project: 'rebuild', total: 3 });
        await job.itemCompleted('a');
        await untilAllVisible(ledger);
        await ledger.catchUpProjections();
        const [first] = await readGenerations(ledger.db, 'jobs');
        expect(first).toMatchObject({ generation: 1, status: 'active', events: 2 });
        await job.itemCompleted('b');
        await untilAllVisible(ledger);
        const [rebuilt] = await ledger.rebuild();
        expect(rebuilt).toMatchObject({ generation: 2, status: 'active', events: 3 });
        expect(await readGenerations(ledger.db, 'jobs')).toHaveLength(1);
        const rows = await ledger.db
          .selectFrom('projection_states')
          .select(({ fn }) => fn.countAll<string>().as('count'))
          .where('generation', '=', 1)
          .execute();
        expect(Number(rows[0]!.count)).toBe(0);
        expect((await ledger.status('rebuilt'))!.progress.processed).toBe(2);
        await expect(ledger.rebuild('nope')).rejects.toThrow(
          /expected one of "jobs", received "nope"/,
        );
      } finally {
        await ledger.close();
      }
    });

    it('resume releases exactly the expired items; after finishing, no item counts twice', async () => {
      const ledger = await store.open();
      try {
        const job = ledger.job('resumable');
        const started = Date.UTC(2026, 10, 1, 12);
        const at = (seconds: number) => new Date(started + seconds * 1_000);
        await job.start(
          { name: 'resume', kind: 'crawl', project: 'resume' },
          { occurredAt: at(0) },
        );
        await job.plan(['a', 'b', 'c', 'd', 'e', 'f']);
        await job.itemStarted('a', {}, { occurredAt: at(1) });
        await job.itemCompleted('a', {}, { occurredAt: at(2) });
        await job.checkpoint({ next: 'b' }, 'after a', { occurredAt: at(2) });
        await job.itemStarted('b', { leaseMs: 10_000 }, { occurredAt: at(3) }); // expires at 13 s
        await job.itemStarted('c', { leaseMs: 600_000 }, { occurredAt: at(3) }); // still leased
        await job.itemStarted('d', {}, { occurredAt: at(4) }); // no lease: default 5 s
        // The worker crashes here. A restart at 20 s:
        const point = await job.resume({
          leaseExpiredBefore: at(20),
          defaultLeaseMs: 5_000,
          reason: 'worker restarted',
          occurredAt: at(20),
        });
        expect(point.checkpoint).toEqual({ next: 'b' });
        expect(point.checkpointNote).toBe('after a');
        expect(point.expired.sort()).toEqual(['b', 'd']);
        expect(point.inFlight).toEqual(['c']);
        expect(point.pending.sort()).toEqual(['b', 'd', 'e', 'f']);
        expect(await ledger.isProcessed('resumable', 'a')).toBe(true);
        expect(await ledger.isProcessed('resumable', 'b')).toBe(false);
        // The restarted worker finishes everything left.
        for (const itemId of ['b', 'd', 'e', 'f', 'c']) {
          await job.itemStarted(itemId);
          await job.itemCompleted(itemId);
        }
        await job.complete();
        const status = (await ledger.status('resumable'))!;
        expect(status.progress.counts).toEqual({
          planned: 6,
          pending: 0,
          inFlight: 0,
          completed: 6,
          failed: 0,
          skipped: 0,
        });
        expect(status.progress.processed).toBe(6);
        const attempts = await ledger.project('resumable', jobItems);
        expect(itemRecord(attempts, 'b')!.attempts).toBe(2);
        expect(itemRecord(attempts, 'e')!.attempts).toBe(1);
        await expect(ledger.resume('no-such-job')).rejects.toThrow(/Job 'no-such-job'/);
        // A finished job is refused, and nothing is recorded.
        const finishedVersion = await ledger.streamVersion('resumable');
        await expect(ledger.resume('resumable')).rejects.toMatchObject({
          code: 'job_finished',
          message: expect.stringMatching(/expected a pending, running or paused job.*completed/),
        });
        expect(await ledger.streamVersion('resumable')).toBe(finishedVersion);
        expect((await ledger.status('resumable'))!.progress.status).toBe('completed');
      } finally {
        await ledger.close();
      }
    });

    it.each([
      ['from the stored tables (a runner that caches nothing)', 0],
      ["from the in-process runner's states", 1_000],
    ])('status read while a runner commits equals the pure fold: %s', async (_path, cacheSize) => {
      const ledger = await store.open();
      try {
        const job = ledger.job('racing');
        await job.start({ name: 'racing', kind: 'crawl', project: 'race', total: 600 });
        await ledger.catchUpProjections();
        // Small batches, committed often, so the runner moves the stored state between
        // the reads of one status query; items come back (released, retried) so that
        // folding an event onto the wrong item status would miscount.
        const runner = ledger.runProjections({ batchSize: 7, pollIntervalMs: 5, cacheSize });
        let appending = true;
        const producer = (async () => {
          for (let round = 0; appending && round < 200; round += 1) {
            const itemId = `i${round % 40}`;
            await job.record([
              { type: 'item.started', data: { itemId } },
              round % 5 === 0
                ? { type: 'items.released', data: { itemIds: [itemId], reason: 'retry' } }
                : { type: 'item.completed', data: { itemId } },
            ]);
          }
        })();
        const seen: { version: number; progress: unknown }[] = [];
        try {
          for (let query = 0; query < 60; query += 1) {
            const view = (await ledger.status('racing'))!;
            seen.push({ version: view.progress.version, progress: view.progress });
          }
        } finally {
          appending = false;
          await producer;
          await runner.stop();
        }
        const stream = await streamOf(ledger, 'racing');
        expect(new Set(seen.map((entry) => entry.version)).size).toBeGreaterThan(5);
        for (const { version, progress } of seen) {
          const { items: _items, ...expected } = fold(jobEta, stream.slice(0, version)).progress;
          expect(progress).toEqual(expected);
        }
      } finally {
        await ledger.close();
      }
    });

    it('cross-job views: active filter, recent order, stage metrics and a parent roll-up', async () => {
      const ledger = await store.open();
      try {
        const t0 = Date.UTC(2026, 10, 1, 8);
        const at = (seconds: number) => ({ occurredAt: new Date(t0 + seconds * 1_000) });
        const parent = ledger.job('batch');
        await parent.start({ name: 'batch', kind: 'batch', project: 'views' }, at(0));
        const children = ['x', 'y', 'z'].map((id) => ledger.job(`child-${id}`));
        for (const [index, child] of children.entries()) {
          await child.start(
            { name: child.jobId, kind: 'image', project: 'views', total: 4, parentJobId: 'batch' },
            at(index),
          );
          await child.stage('resize', {}, at(10));
          for (let item = 0; item < 2 + index; item += 1) {
            await child.itemCompleted(`i${item}`, {}, at(11 + item));
          }
          await child.stage('upload', {}, at(20 + index * 10));
        }
        await children[0]!.complete(undefined, at(100));
        await ledger.catchUpProjections();
        // Appended after the catch-up: answers include it all the same.
        await children[2]!.itemCompleted('late', {}, at(101));

        const now = t0 + 160_000;
        const active = await ledger.jobs({
          project: 'views',
          active: true,
          finishedVisibleMs: 30_000,
          now,
        });
        expect(active.map((view) => view.jobId).sort()).toEqual(['batch', 'child-y', 'child-z']);
        const recent = await ledger.jobs({ project: 'views', now });
        expect(recent.map((view) => view.jobId)).toEqual([
          'child-z',
          'child-x',
          'child-y',
          'batch',
        ]);

        const status = (await ledger.status('batch'))!;
        expect(status.children).toMatchObject({
          count: 3,
          byStatus: { completed: 1, running: 2 },
          processed: 2 + 3 + 5,
          total: 12,
        });
        expect(status.children!.percent).toBeCloseTo((10 / 12) * 100, 6);

        const resize = (await ledger.stageMetrics({ project: 'views' })).find(
          (metric) => metric.stage === 'resize',
        )!;
        // Resize ran 10 s, 20 s and 30 s, with 2, 3 and 4 items done while it ran.
        expect(resize).toMatchObject({ kind: 'image', runs: 3 });
        expect(resize.meanMs).toBeCloseTo(20_000, -3);
        expect(resize.itemsPerSecond).toBeCloseTo(9 / 60, 6);

        const [views] = await ledger.projectOverview({ now });
        expect(views).toMatchObject({ project: 'views', jobs: 4, processed: 10 });
      } finally {
        await ledger.close();
      }
    });
  });
}

const postgres = storesUnderTest().find((store) => store.name === 'postgres')!;

describe.skipIf(!postgres.available)('one runner per projection: postgres', () => {
  afterAll(() => postgres.cleanup());

  it('a second process waits while the first holds the lock, and takes over when it dies', async () => {
    const schema = `hw_runner_${Date.now()}`;
    const first = await postgres.open({ schema });
    const second = await postgres.open({ schema });
    try {
      await first.job('locked').start({ name: 'l', kind: 'crawl', project: 'lock' });
      const running = first.runProjections({ pollIntervalMs: 50 });
      await until(async () => (await readGenerations(first.db, 'jobs'))[0]?.status === 'active');
      expect(await second.catchUpProjections()).toEqual([]);
      await running.stop();
      await first.job('locked').itemCompleted('a');
      await untilAllVisible(second);
      expect(await second.catchUpProjections()).toEqual(['jobs']);
      expect((await storedState(second, 'locked'))?.progress.processed).toBe(1);
    } finally {
      await first.close();
      await second.close();
    }
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
