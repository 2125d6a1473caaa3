import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { estimateEta, jobEta } from '../../projections/job-eta.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import { stageProgress } from '../../projections/job-stages.ts';
import { fold } from '../../projections/projection.ts';
import { finishedStageRuns, stageFigures, stageMetrics } from '../../projections/stage-metrics.ts';
import { record } from '../arbitraries.ts';

const stages = ['clone', 'parse', 'embed', 'store'];
const items = ['a', 'b', 'c', 'd'];

const start: EventInput = {
  type: 'job.started',
  data: {
    name: 'index repos',
    kind: 'index',
    project: 'code',
    total: items.length,
    stages: stages.map((name) => ({ name })),
  },
};

/** Events one second apart. */
const oneJob = (facts: EventInput[]) =>
  record(
    facts.map((event) => ({ streamId: 'job-1', event })),
    [1_000],
  );

/** Every state of the fold, event by event, with the ETA as of that event. */
function steps(events: RecordedEvent[], context = {}) {
  let state: JobEtaState = jobEta.initial();
  return events.map((event) => {
    state = jobEta.evolve(state, event);
    return { event, state, eta: estimateEta(state, event.occurredAt.getTime(), context) };
  });
}

/** Four stages in turn: each starts, then every item passes through it. */
const inTurn: EventInput[] = [
  start,
  { type: 'items.planned', data: { items: items.map((id) => ({ id })) } },
  ...stages.flatMap((stage): EventInput[] => [
    { type: 'stage.started', data: { stage } },
    ...items.map((itemId): EventInput => ({ type: 'item.completed', data: { itemId } })),
  ]),
  { type: 'job.completed', data: {} },
];

describe('a four-stage job whose items pass through every stage in turn', () => {
  it('reads a percent below 100 and an ETA above zero at every step until it finishes', () => {
    const all = steps(oneJob(inTurn));
    const firstOutcome = all.findIndex(({ event }) => event.type === 'item.completed');
    for (const [index, { state, eta }] of all.entries()) {
      if (index === all.length - 1) {
        expect(state.progress.percent).toBe(100);
        expect(eta.etaMs).toBe(0);
        expect(eta.finishAt).toBe(state.progress.endedAt);
        continue;
      }
      expect(state.progress.percent).toBeLessThan(100);
      const workLeft = eta.stages.some((stage) => stage.basis !== 'done');
      // Before the first outcome there is no rate to go on: unknown, never zero.
      if (index < firstOutcome) expect(eta.etaMs).toBeNull();
      else expect(eta.etaMs! > 0).toBe(workLeft);
      // Work is left in some stage at every step before the last item's last stage.
      expect(workLeft).toBe(index < all.length - 2);
    }
  });

  it('at the second stage counts the three stages left, each with its basis', () => {
    const all = steps(oneJob(inTurn));
    const atParse = all.find(
      ({ event }) => event.type === 'stage.started' && event.data.stage === 'parse',
    )!;
    // clone took 1 s an item; parse, embed and store are guessed from the weights: 4 s each.
    expect(atParse.eta.etaMs).toBeCloseTo(12_000, -2);
    expect(atParse.state.progress.percent).toBe(25);
    expect(
      atParse.eta.stages.map(({ name, total, pending, completed, basis }) => ({
        name,
        total,
        pending,
        completed,
        basis,
      })),
    ).toEqual([
      { name: 'clone', total: 4, pending: 0, completed: 4, basis: 'done' },
      { name: 'parse', total: 4, pending: 4, completed: 0, basis: 'weights' },
      { name: 'embed', total: 4, pending: 4, completed: 0, basis: 'weights' },
      { name: 'store', total: 4, pending: 4, completed: 0, basis: 'weights' },
    ]);
    // The job-wide item counts still give each item's latest status.
    expect(atParse.state.progress.counts.completed).toBe(4);
  });

  it('estimates a stage not yet started from earlier jobs of its kind, and the range widens', () => {
    const events = oneJob(inTurn);
    const atParse = events.findIndex(
      (event) => event.type === 'stage.started' && event.data.stage === 'parse',
    );
    const state = fold(jobEta, events.slice(0, atParse + 1));
    const now = events[atParse]!.occurredAt.getTime();
    const withHistory = estimateEta(state, now, { stageRates: { embed: 0.5, store: 2 } });
    expect(withHistory.stages.map((stage) => stage.basis)).toEqual([
      'done',
      'weights',
      'history',
      'history',
    ]);
    // parse 4 s from clone's pace, embed 4 items at 0.5/s = 8 s, store 4 at 2/s = 2 s.
    expect(withHistory.etaMs).toBeCloseTo(14_000, -2);
    // Guessed stages widen the range; once every stage is measured it narrows.
    const relativeWidth = (eta: typeof withHistory) =>
      (eta.range!.highMs - eta.range!.lowMs) / eta.etaMs!;
    const inStore = events.length - 3;
    const measured = estimateEta(
      fold(jobEta, events.slice(0, inStore + 1)),
      events[inStore]!.occurredAt.getTime(),
    );
    expect(measured.stages.at(-1)!.basis).toBe('measured');
    expect(relativeWidth(withHistory)).toBeGreaterThan(2 * relativeWidth(measured));
  });
});

describe('a pipeline whose item events name their stage', () => {
  /** Item by item: each goes clone → parse → embed → store before the next starts. */
  const itemByItem: EventInput[] = [
    start,
    ...items.flatMap((itemId) =>
      stages.flatMap((stage): EventInput[] => [
        { type: 'item.started', data: { itemId, stage } },
        { type: 'item.completed', data: { itemId, stage } },
      ]),
    ),
  ];

  it('counts each stage on its own and keeps the percent and ETA honest', () => {
    const all = steps(oneJob(itemByItem));
    for (const { state, eta } of all.slice(3, -1)) {
      expect(state.progress.percent).toBeLessThan(100);
      expect(eta.etaMs).toBeGreaterThan(0);
    }
    expect(all.at(-1)!.eta.etaMs).toBe(0);
    // Two items done in every stage, the third in flight in parse.
    const third = all.findIndex(
      ({ event }) =>
        event.type === 'item.started' && event.data.itemId === 'c' && event.data.stage === 'parse',
    );
    const { state, eta } = all[third]!;
    expect(
      eta.stages.map(({ name, pending, inFlight, completed }) => [
        name,
        pending,
        inFlight,
        completed,
      ]),
    ).toEqual([
      ['clone', 1, 0, 3],
      ['parse', 1, 1, 2],
      ['embed', 2, 0, 2],
      ['store', 2, 0, 2],
    ]);
    expect(state.progress.percent).toBeCloseTo(((3 + 2 + 2 + 2) / 16) * 100);
    expect(eta.stages.every((stage) => stage.basis === 'measured')).toBe(true);
  });

  it('stops the pipeline for an item that failed or was skipped on the way', () => {
    const state = fold(
      jobProgress,
      oneJob([
        start,
        { type: 'item.completed', data: { itemId: 'a', stage: 'clone' } },
        {
          type: 'item.failed',
          data: { itemId: 'b', error: { message: 'HTTP 404', stage: 'clone' } },
        },
        { type: 'item.skipped', data: { itemId: 'c', stage: 'parse' } },
        { type: 'item.completed', data: { itemId: 'a', stage: 'parse' } },
      ]),
    );
    expect(
      state.stageTallies.map(({ name, completed, failed, skipped, stopped }) => [
        name,
        completed,
        failed,
        skipped,
        stopped,
      ]),
    ).toEqual([
      ['clone', 1, 1, 0, 1],
      ['parse', 1, 0, 1, 1],
      ['embed', 0, 0, 0, 0],
      ['store', 0, 0, 0, 0],
    ]);
    // b stopped at clone and c at parse: embed and store expect only a and d.
    expect(
      stageProgress(state.stageTallies, state.total, state.sequentialStages).map(
        (stage) => stage.total,
      ),
    ).toEqual([4, 3, 2, 2]);
  });
});

describe('stages one after another over different item sets', () => {
  it('keep counting each stage against its declared total, as before', () => {
    const state = fold(
      jobProgress,
      oneJob([
        {
          type: 'job.started',
          data: {
            name: 'crawl',
            kind: 'crawl',
            project: 'web',
            total: 10,
            stages: [{ name: 'list' }, { name: 'fetch', weight: 3 }],
          },
        },
        { type: 'stage.started', data: { stage: 'list', total: 2 } },
        { type: 'item.completed', data: { itemId: 'page-1' } },
        { type: 'item.completed', data: { itemId: 'page-2' } },
        { type: 'stage.started', data: { stage: 'fetch', total: 8 } },
        { type: 'item.completed', data: { itemId: 'url-1' } },
        { type: 'item.failed', data: { itemId: 'url-2', error: { message: 'x' } } },
      ]),
    );
    // list done (weight 1), fetch 2 of 8 (weight 3).
    expect(state.percent).toBeCloseTo(((1 + 3 * (2 / 8)) / 4) * 100);
    expect(state.counts).toMatchObject({ completed: 3, failed: 1 });
  });

  it('without stage totals, treat a stage a later one ended as over', () => {
    const state = fold(
      jobEta,
      oneJob([
        {
          type: 'job.started',
          data: {
            name: 'c',
            kind: 'crawl',
            project: 'web',
            total: 6,
            stages: [{ name: 'list' }, { name: 'fetch' }],
          },
        },
        { type: 'stage.started', data: { stage: 'list' } },
        { type: 'item.completed', data: { itemId: 'page-1' } },
        { type: 'item.completed', data: { itemId: 'page-2' } },
        { type: 'stage.started', data: { stage: 'fetch' } },
        { type: 'item.completed', data: { itemId: 'url-1' } },
      ]),
    );
    const eta = estimateEta(state, state.lastAt!);
    expect(eta.stages.map(({ name, total, status }) => [name, total, status])).toEqual([
      ['list', 2, 'done'],
      ['fetch', 6, 'running'],
    ]);
  });
});

describe('stage metrics of pipelines whose item events name their stage', () => {
  it('count each named stage once per job, from its first event to its last outcome', () => {
    const events = oneJob([
      start,
      { type: 'item.started', data: { itemId: 'a', stage: 'clone' } },
      { type: 'item.completed', data: { itemId: 'a', stage: 'clone' } },
      { type: 'item.completed', data: { itemId: 'b', stage: 'clone' } },
      { type: 'item.completed', data: { itemId: 'a', stage: 'parse' } },
      { type: 'job.completed', data: {} },
    ]);
    const figures = stageFigures(fold(stageMetrics, events));
    expect(
      figures.map(({ stage, runs, meanMs, itemsPerSecond }) => [
        stage,
        runs,
        meanMs,
        itemsPerSecond,
      ]),
    ).toEqual([
      ['clone', 1, 2_000, 1],
      ['parse', 1, 0, null],
    ]);
    // The stored job state gives the same runs.
    const progress = fold(jobProgress, events);
    expect(finishedStageRuns(progress)).toEqual([
      { name: 'clone', durationMs: 2_000, items: 2 },
      { name: 'parse', durationMs: 0, items: 1 },
    ]);
  });
});

describe('a release', () => {
  it('sends back only the furthest stage, and never completes an earlier one in flight', () => {
    // Found by the recount property: an item failed in a later stage, started again in an
    // earlier one, then its lease expired.
    const events = oneJob([
      { type: 'job.started', data: { name: 'job', kind: 'crawl', project: 'web' } },
      { type: 'stage.started', data: { stage: 'extract' } },
      {
        type: 'item.failed',
        data: { itemId: 'item-9', stage: 'fetch', error: { message: 'read ECONNRESET' } },
      },
      { type: 'item.started', data: { itemId: 'item-9' } },
      { type: 'items.released', data: { itemIds: ['item-9'], reason: 'lease expired' } },
    ]);
    const counts = fold(jobProgress, events).stageTallies.map(
      ({ name, inFlight, completed, failed }) => ({ name, inFlight, completed, failed }),
    );
    expect(counts).toEqual([
      { name: 'extract', inFlight: 1, completed: 0, failed: 0 },
      { name: 'fetch', inFlight: 0, completed: 0, failed: 0 },
    ]);
  });
});
