import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { describeEvent } from '../projections/job-timeline.ts';
import type { ConditionWatcher } from '../src/alerts/condition-watcher.ts';
import { createServer } from '../src/server/server.ts';
import { listenOnLoopback } from './listen.ts';
import { storesUnderTest } from './stores.ts';

// The watcher records conditions in the log as facts: raised once when first seen, cleared
// once when they stop holding, at the version judged, moving none of the job's own figures.

const minute = 60_000;
const hour = 60 * minute;

/** A job whose only events occurred `ago` ms before `now`. */
async function startJob(
  ledger: Ledger,
  now: number,
  ago: number,
  data: Record<string, unknown> = {},
): Promise<string> {
  const jobId = randomUUID();
  await ledger.append(jobId, [
    {
      type: 'job.started',
      occurredAt: new Date(now - ago),
      data: { name: 'crawl', kind: 'crawl', project: 'records', ...data },
    },
    { type: 'item.completed', occurredAt: new Date(now - ago), data: { itemId: 'a' } },
  ]);
  return jobId;
}

/** The `condition.*` records of a job, in order. */
async function records(ledger: Ledger, jobId: string) {
  const events = await ledger.readStream(jobId);
  return events
    .filter((event) => event.type.startsWith('condition.'))
    .map((event) => ({
      type: event.type,
      condition: (event.data as { condition: string }).condition,
    }));
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`condition records: ${store.name}`, () => {
    let ledger: Ledger;
    let watcher: ConditionWatcher;
    // Named, so that a second ledger (a second server) can open the same log.
    const schema = `hw_test_${randomBytes(6).toString('hex')}`;

    beforeAll(async () => {
      ledger = await store.open(store.name === 'postgres' ? { schema } : {});
      watcher = ledger.conditionWatcher();
    });

    afterAll(async () => {
      await ledger?.close();
      await store.cleanup();
    });

    it('records a stall once, and the recovery once on the next event, moving no count', async () => {
      const now = Date.now();
      const jobId = await startJob(ledger, now, hour, { stallAfterMs: minute });
      const before = (await ledger.status(jobId, now))!;

      const first = await watcher.sweep(now);
      expect(first.raised).toBeGreaterThanOrEqual(1);
      await watcher.sweep(now + 1_000);
      expect(await records(ledger, jobId)).toEqual([
        { type: 'condition.raised', condition: 'stalled' },
      ]);
      const raised = (await ledger.readStream(jobId)).at(-1)!;
      expect(raised.data).toMatchObject({
        condition: 'stalled',
        thresholdMs: minute,
        basis: 'job',
        silentMs: hour,
      });

      // The record moves nothing the conditions are judged by, nor any count.
      const stalled = (await ledger.status(jobId, now + 1_000))!;
      expect(stalled.progress.lastEventAt).toBe(before.progress.lastEventAt);
      expect(stalled.progress.updatedAt).toBe(before.progress.updatedAt);
      expect(stalled.progress.counts).toEqual(before.progress.counts);
      expect(stalled.progress.processed).toBe(before.progress.processed);
      expect(stalled.conditions.stalled).not.toBeNull();
      expect(stalled.progress.raisedConditions).toMatchObject([{ condition: 'stalled' }]);

      await ledger.append(jobId, [
        { type: 'item.completed', occurredAt: new Date(now + 2_000), data: { itemId: 'b' } },
      ]);
      await watcher.sweep(now + 3_000);
      await watcher.sweep(now + 4_000);
      expect(await records(ledger, jobId)).toEqual([
        { type: 'condition.raised', condition: 'stalled' },
        { type: 'condition.cleared', condition: 'stalled' },
      ]);
      const timeline = await ledger.timeline({ jobId });
      expect(timeline.events.map((event) => describeEvent(event))).toContain(
        'condition.cleared stalled after 3 s',
      );
    });

    it('records a stall in the background once started, with no hooks given', async () => {
      const jobId = await startJob(ledger, Date.now(), hour, { stallAfterMs: minute });
      const running = ledger.watchConditions({ intervalMs: 50 });
      try {
        for (let round = 0; round < 200; round += 1) {
          if ((await records(ledger, jobId)).length > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      } finally {
        await running.stop();
      }
      expect(await records(ledger, jobId)).toEqual([
        { type: 'condition.raised', condition: 'stalled' },
      ]);
    });

    it('records at risk, then late instead, from the deadline and the ETA', async () => {
      const now = Date.now();
      const jobId = randomUUID();
      // 1 item a minute with 100 to go: about 100 minutes left, past a deadline in 30.
      await ledger.append(jobId, [
        {
          type: 'job.started',
          occurredAt: new Date(now - 10 * minute),
          data: {
            name: 'index',
            kind: 'index',
            project: 'records',
            total: 110,
            deadline: new Date(now + 30 * minute).toISOString(),
          },
        },
        ...Array.from({ length: 10 }, (_, index) => ({
          type: 'item.completed' as const,
          occurredAt: new Date(now - (9 - index) * minute),
          data: { itemId: `i${index}`, durationMs: minute },
        })),
      ]);
      await watcher.sweep(now);
      expect(await records(ledger, jobId)).toEqual([
        { type: 'condition.raised', condition: 'at_risk' },
      ]);
      await watcher.sweep(now + 31 * minute);
      expect(await records(ledger, jobId)).toEqual([
        { type: 'condition.raised', condition: 'at_risk' },
        // The slower of the two: stalled at 10 minutes' silence (the default), by then.
        { type: 'condition.raised', condition: 'stalled' },
        { type: 'condition.cleared', condition: 'at_risk' },
        { type: 'condition.raised', condition: 'late' },
      ]);
    });

    it('records a failure rate above the job’s threshold', async () => {
      const now = Date.now();
      const jobId = randomUUID();
      await ledger.append(jobId, [
        {
          type: 'job.started',
          occurredAt: new Date(now - 1_000),
          data: { name: 'fetch', kind: 'fetch', project: 'records', failureRateAbove: 0.2 },
        },
        ...Array.from({ length: 30 }, (_, index) =>
          index % 2 === 0
            ? {
                type: 'item.failed' as const,
                occurredAt: new Date(now - 500),
                data: { itemId: `f${index}`, error: { message: 'read ECONNRESET' } },
              }
            : {
                type: 'item.completed' as const,
                occurredAt: new Date(now - 500),
                data: { itemId: `f${index}` },
              },
        ),
      ]);
      const status = (await ledger.status(jobId, now))!;
      expect(status.conditions.failureRate).toMatchObject({
        threshold: 0.2,
        basis: 'job',
        outcomes: 30,
      });
      await watcher.sweep(now);
      expect(await records(ledger, jobId)).toEqual([
        { type: 'condition.raised', condition: 'failure_rate' },
      ]);

      // Listed as failing, from the log's tail and from stored states (narrowed in SQL) alike;
      // a job with as many outcomes, none failed, is not.
      const healthy = randomUUID();
      await ledger.append(healthy, [
        {
          type: 'job.started',
          data: { name: 'fetch', kind: 'fetch', project: 'records', failureRateAbove: 0.2 },
        },
        ...Array.from({ length: 30 }, (_, index) => ({
          type: 'item.completed' as const,
          data: { itemId: `h${index}` },
        })),
      ]);
      const failing = async () =>
        (await ledger.jobs({ project: 'records', condition: ['failure_rate'], now })).map(
          (job) => job.jobId,
        );
      expect(await failing()).toEqual([jobId]);
      await ledger.catchUpProjections();
      expect(await failing()).toEqual([jobId]);
    });

    it('writes each record once when two watchers judge the same state at once', async () => {
      const now = Date.now();
      const other = await (store.name === 'postgres'
        ? store.open({ schema })
        : Promise.resolve(ledger));
      try {
        const jobIds = await Promise.all(
          Array.from({ length: 5 }, () => startJob(ledger, now, hour, { stallAfterMs: minute })),
        );
        const second = other.conditionWatcher();
        await Promise.all([watcher.sweep(now), second.sweep(now), watcher.sweep(now)]);
        for (const jobId of jobIds) {
          expect(await records(ledger, jobId)).toEqual([
            { type: 'condition.raised', condition: 'stalled' },
          ]);
        }
      } finally {
        if (other !== ledger) await other.close();
      }
    });

    it('lists stalled jobs with stalled=true, and leaves them out with stalled=false', async () => {
      const now = Date.now();
      const project = `list-${randomUUID()}`;
      const stalled = await startJob(ledger, now, hour, { project, stallAfterMs: minute });
      const lively = await startJob(ledger, now, 1_000, { project, stallAfterMs: hour });
      // Stalled, and the most recently updated: first in the order a limit cuts.
      const fresh = await startJob(ledger, now, 10, { project, stallAfterMs: 1 });
      const ids = async (query: object) =>
        (await ledger.jobs({ project, now, ...query })).map((job) => job.jobId);
      expect(await ids({ stalled: true })).toEqual([fresh, stalled]);
      expect(await ids({ stalled: false })).toEqual([lively]);
      // Stored states too: the SQL narrows, the fold decides, and a limit cuts after that.
      await ledger.catchUpProjections();
      expect(await ids({ stalled: true })).toEqual([fresh, stalled]);
      expect(await ids({ stalled: false, limit: 1 })).toEqual([lively]);
      expect(await ids({ stalled: true, limit: 1 })).toEqual([fresh]);
      expect(await ids({ condition: ['stalled', 'late'] })).toEqual([fresh, stalled]);
      const [listed] = await ledger.jobs({ project, now, jobId: stalled });
      expect(listed?.conditions.stalled?.basis).toBe('job');
    });
  });
}

describe('conditions in /metrics', () => {
  const [store] = storesUnderTest();

  it('counts the jobs in each condition by project and kind', async () => {
    const ledger = await store!.open();
    const server = await createServer({ ledger });
    try {
      const url = await listenOnLoopback(server);
      const now = Date.now();
      const project = `metrics-${randomUUID()}`;
      await startJob(ledger, now, hour, { project, stallAfterMs: minute });
      await startJob(ledger, now, hour, { project, stallAfterMs: minute });
      await startJob(ledger, now, 0, { project, stallAfterMs: hour });
      const text = await (await fetch(`${url}/metrics`)).text();
      expect(text).toContain(`headway_jobs_stalled{project="${project}",kind="crawl"} 2`);
      expect(text).not.toContain(`headway_jobs_late{project="${project}"`);
      expect(text).toMatch(/^headway_webhook_deliveries\{status="dead"\} 0$/m);

      // Producers cannot forge the server's records.
      const forged = await fetch(`${url}/v1/jobs/${randomUUID()}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          events: [{ type: 'condition.raised', data: { condition: 'stalled' } }],
        }),
      });
      expect(forged.status).toBe(400);
      expect(JSON.stringify(await forged.json())).toContain(
        'condition.* events are recorded by the server',
      );
    } finally {
      await server.close();
      await ledger.close();
    }
  });
});
