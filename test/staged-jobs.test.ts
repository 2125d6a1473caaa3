import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import type { EtaEstimate } from '../projections/job-eta.ts';
import type { Ledger } from '../src/ledger.ts';
import type { JobStatusView } from '../src/queries/job-views.ts';
import { readEventStream } from '../src/client/event-stream.ts';
import { createServer } from '../src/server/server.ts';
import { storesUnderTest } from './stores.ts';
import { listenOnLoopback } from './listen.ts';

const stages = ['clone', 'parse', 'embed', 'store'];
const items = ['repo-a', 'repo-b', 'repo-c', 'repo-d'];
const t0 = Date.parse('2026-11-30T10:00:00Z');

/** A four-stage job whose items pass through every stage in turn, one second apart. */
function fourStageJob(kind: string): EventInput[] {
  const facts: EventInput[] = [
    {
      type: 'job.started',
      data: {
        name: 'index repos',
        kind,
        project: 'code',
        total: items.length,
        stages: stages.map((name) => ({ name })),
      },
    },
    { type: 'items.planned', data: { items: items.map((id) => ({ id })) } },
    ...stages.flatMap((stage): EventInput[] => [
      { type: 'stage.started', data: { stage } },
      ...items.flatMap((itemId): EventInput[] => [
        { type: 'item.started', data: { itemId } },
        { type: 'item.completed', data: { itemId } },
      ]),
    ]),
    { type: 'job.completed', data: {} },
  ];
  return facts.map((fact, index) => ({
    ...fact,
    occurredAt: new Date(t0 + index * 1_000).toISOString(),
  }));
}

/** Some stage still has work: not every stage has every item done. */
const workLeft = (eta: EtaEstimate) => eta.stages.some((stage) => stage.basis !== 'done');

/** What must hold at every step: percent below 100 and an ETA above zero until it finishes. */
function expectHonest(view: JobStatusView, step: number, steps: number, firstOutcome: number) {
  const last = step === steps - 1;
  if (last) {
    expect(view.progress.percent).toBe(100);
    expect(view.eta.etaMs).toBe(0);
    expect(view.eta.finishAt).toBe(view.progress.endedAt);
    return;
  }
  expect(view.progress.percent).toBeLessThan(100);
  expect(workLeft(view.eta)).toBe(step < steps - 2);
  if (step < firstOutcome) expect(view.eta.etaMs).toBeNull();
  else if (workLeft(view.eta)) expect(view.eta.etaMs).toBeGreaterThan(0);
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`four-stage jobs: ${store.name}`, () => {
    let ledger: Ledger;
    let server: FastifyInstance;
    let base: string;

    beforeAll(async () => {
      ledger = await store.open();
      server = await createServer({ ledger });
      base = await listenOnLoopback(server);
    });
    afterAll(async () => {
      await server.close();
      await ledger.close();
      await store.cleanup();
    });

    it('read honestly at every step through the library', async () => {
      const facts = fourStageJob('index');
      const firstOutcome = facts.findIndex((fact) => fact.type === 'item.completed');
      for (const [step, fact] of facts.entries()) {
        await ledger.append('lib-job', [fact]);
        const view = (await ledger.status('lib-job'))!;
        expectHonest(view, step, facts.length, firstOutcome);
      }
    });

    it('read honestly at every step over HTTP, with per-stage counts in the answer', async () => {
      const facts = fourStageJob('index-http');
      const firstOutcome = facts.findIndex((fact) => fact.type === 'item.completed');
      for (const [step, fact] of facts.entries()) {
        const posted = await fetch(`${base}/v1/jobs/http-job/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ events: [fact] }),
        });
        expect(posted.status).toBeLessThan(300);
        const view = (await (await fetch(`${base}/v1/jobs/http-job`)).json()) as JobStatusView;
        expectHonest(view, step, facts.length, firstOutcome);
        // At the second stage, after its first item: where every stage stands.
        if (
          step ===
          facts.findIndex((f) => f.type === 'stage.started' && f.data.stage === 'parse') + 2
        ) {
          expect(
            view.eta.stages.map(({ name, total, pending, inFlight, completed, basis }) => ({
              name,
              total,
              pending,
              inFlight,
              completed,
              basis,
            })),
          ).toEqual([
            { name: 'clone', total: 4, pending: 0, inFlight: 0, completed: 4, basis: 'done' },
            { name: 'parse', total: 4, pending: 3, inFlight: 0, completed: 1, basis: 'measured' },
            { name: 'embed', total: 4, pending: 4, inFlight: 0, completed: 0, basis: 'weights' },
            { name: 'store', total: 4, pending: 4, inFlight: 0, completed: 0, basis: 'weights' },
          ]);
          expect(view.progress.percent).toBeCloseTo(((4 + 1) / 16) * 100);
        }
      }
    });

    it('sends each stage’s counts in the SSE snapshot', async () => {
      const abort = new AbortController();
      let snapshot: JobStatusView | null = null;
      for await (const message of readEventStream(`${base}/v1/jobs/http-job/stream`, {
        signal: abort.signal,
      })) {
        if (message.event !== 'snapshot') continue;
        snapshot = message.data as JobStatusView;
        abort.abort();
      }
      // The job has completed: every stage holds its four items.
      expect(
        snapshot!.eta.stages.map(({ name, total, completed, pending }) => [
          name,
          total,
          completed,
          pending,
        ]),
      ).toEqual(stages.map((name) => [name, 4, 4, 0]));
    });

    it('estimates a later job’s stages from the earlier jobs of its kind', async () => {
      // lib-job (kind "index") has finished: each stage ran 9 s for its 4 items.
      const facts = fourStageJob('index');
      const atParse = facts.findIndex(
        (f) => f.type === 'stage.started' && f.data.stage === 'parse',
      );
      await ledger.append('lib-job-2', facts.slice(0, atParse + 1));
      // Rates of a kind are read again at most every 30 s: ask as of a minute on.
      const view = (await ledger.status('lib-job-2', Date.now() + 60_000))!;
      expect(view.eta.stages.map((stage) => stage.basis)).toEqual([
        'done',
        'history',
        'history',
        'history',
      ]);
      expect(view.eta.stages.slice(1).map((stage) => stage.etaMs)).toEqual([9_000, 9_000, 9_000]);
    });
  });
}
