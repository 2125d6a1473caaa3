import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import { classifyFailure, describeError } from '../../projections/failure-classification.ts';
import { estimateEta, jobEta } from '../../projections/job-eta.ts';
import {
  exportFailures,
  failureGroups,
  jobFailures,
  normaliseMessage,
} from '../../projections/job-failures.ts';
import { inFlightItems, jobItems, pendingItems, stuckItems } from '../../projections/job-items.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import { formatSummary, jobSummary } from '../../projections/job-summary.ts';
import { describeEvent } from '../../projections/job-timeline.ts';
import { fold } from '../../projections/projection.ts';
import { jobOverviews, projectSummaries } from '../../projections/project-overview.ts';
import { stageFigures, stageMetrics } from '../../projections/stage-metrics.ts';
import { record } from '../arbitraries.ts';

const start: EventInput = {
  type: 'job.started',
  data: {
    name: 'crawl',
    kind: 'crawl',
    project: 'web',
    total: 4,
    stages: [{ name: 'fetch' }, { name: 'index', weight: 3 }],
  },
};
const given = (...facts: EventInput[]) =>
  record(
    facts.map((event) => ({ streamId: 'job-1', event })),
    [1_000],
  );

describe('job progress', () => {
  it('given items started and finished, then counts, stages and weighted percent follow', () => {
    const state = fold(
      jobProgress,
      given(
        start,
        { type: 'items.planned', data: { items: [{ id: 'a' }, { id: 'b' }, { id: 'a' }] } },
        { type: 'stage.started', data: { stage: 'fetch', total: 2 } },
        { type: 'item.started', data: { itemId: 'a' } },
        { type: 'item.completed', data: { itemId: 'a', type: 'html' } },
        { type: 'item.started', data: { itemId: 'b' } },
        { type: 'checkpoint.saved', data: { cursor: { page: 2 }, note: 'after b' } },
      ),
    );
    expect(state.counts).toEqual({
      planned: 2,
      pending: 0,
      inFlight: 1,
      completed: 1,
      failed: 0,
      skipped: 0,
    });
    expect(state.total).toBe(4);
    expect(state.current).toBe('b');
    // fetch has weight 1 of 4 and is half done.
    expect(state.percent).toBeCloseTo(12.5);
    expect(state.lastCheckpoint).toMatchObject({
      cursor: { page: 2 },
      note: 'after b',
      version: 7,
    });
    expect(state.byType).toEqual({ html: { completed: 1, failed: 0, skipped: 0 } });
  });

  it('given a stage change and the end, then stage durations are recorded', () => {
    const state = fold(
      jobProgress,
      given(
        start,
        { type: 'stage.started', data: { stage: 'fetch' } },
        { type: 'stage.started', data: { stage: 'index' } },
        { type: 'job.completed', data: {} },
      ),
    );
    expect(state.stages.map((stage) => [stage.name, stage.durationMs])).toEqual([
      ['fetch', 1_000],
      ['index', 1_000],
    ]);
    expect(state.status).toBe('completed');
    expect(state.percent).toBe(100);
  });

  it('given outcomes in two stages, then each stage run counts its own', () => {
    const state = fold(
      jobProgress,
      given(
        start,
        { type: 'stage.started', data: { stage: 'fetch', total: 3 } },
        { type: 'item.completed', data: { itemId: 'a' } },
        { type: 'item.failed', data: { itemId: 'b', error: { message: 'x' } } },
        { type: 'item.skipped', data: { itemId: 'c' } },
        { type: 'stage.started', data: { stage: 'index' } },
        { type: 'item.failed', data: { itemId: 'a', error: { message: 'y' } } },
      ),
    );
    expect(
      state.stages.map(({ name, total, processed, failed, skipped }) => ({
        name,
        total,
        processed,
        failed,
        skipped,
      })),
    ).toEqual([
      { name: 'fetch', total: 3, processed: 3, failed: 1, skipped: 1 },
      { name: 'index', total: null, processed: 1, failed: 1, skipped: 0 },
    ]);
  });
});

describe('job items', () => {
  it('given a crash with items in flight, then they are in flight, stuck and released back to pending', () => {
    const events = given(
      start,
      { type: 'items.planned', data: { items: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] } },
      { type: 'item.started', data: { itemId: 'a', leaseMs: 500 } },
      { type: 'item.started', data: { itemId: 'b' } },
    );
    const state = fold(jobItems, events);
    expect(
      inFlightItems(state)
        .map((item) => item.itemId)
        .sort(),
    ).toEqual(['a', 'b']);
    const now = events.at(-1)!.occurredAt.getTime() + 800;
    expect(stuckItems(state, now, 60_000).map((item) => item.itemId)).toEqual(['a']);
    const released = jobItems.evolve(state, {
      ...events.at(-1)!,
      version: 5,
      type: 'items.released',
      data: { itemIds: ['a'], reason: 'lease expired' },
    } as never);
    expect(
      pendingItems(released)
        .map((item) => item.itemId)
        .sort(),
    ).toEqual(['a', 'c']);
  });
});

describe('summary', () => {
  it('formats one human line', () => {
    const state = fold(
      jobSummary,
      given(
        start,
        ...['a', 'b', 'c'].map((itemId, index): EventInput => ({
          type: 'item.completed',
          data: { itemId, durationMs: 100 * (index + 1) },
        })),
        { type: 'item.failed', data: { itemId: 'd', durationMs: 900, error: { message: 'boom' } } },
        { type: 'job.completed', data: {} },
      ),
    );
    expect(formatSummary(state)).toMatchInlineSnapshot(
      `"crawl completed: 3 ok, 1 failed, 0 skipped of 4 in 5.0s (0.8 items/s); p50 198 ms, p95 900 ms"`,
    );
  });
});

describe('failures', () => {
  it('normalises messages so that equal failures group', () => {
    expect([
      normaliseMessage('GET https://example.org/a/17?x=1 failed after 3000 ms'),
      normaliseMessage(
        'item 3f1c9a2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b: cannot open /var/data/in/file-7.json',
      ),
      normaliseMessage('column \'price\' is 0xdeadbeef, expected "number"'),
    ]).toMatchInlineSnapshot(`
      [
        "GET <url> failed after <n> ms",
        "item <uuid>: cannot open <path>",
        "column <str> is <hex>, expected <str>",
      ]
    `);
  });

  it('groups by category and message and lists retry candidates until they succeed', () => {
    const fail = (itemId: string, message: string, category: string): EventInput => ({
      type: 'item.failed',
      data: { itemId, error: { message, category } },
    });
    const state = fold(
      jobFailures,
      given(
        start,
        fail('a', 'read ECONNRESET on 10.0.0.1', 'network'),
        fail('b', 'read ECONNRESET on 10.0.0.2', 'network'),
        fail('c', 'unsupported format', 'not_applicable'),
        { type: 'item.completed', data: { itemId: 'b' } },
      ),
    );
    const report = exportFailures(state, 'job-1', '2026-11-22T00:00:00.000Z');
    expect(report.groups.map((group) => [group.key, group.count, group.itemIds])).toEqual([
      ['network: read ECONNRESET on <n>.<n>.<n>.<n>', 2, ['a', 'b']],
      ['not_applicable: unsupported format', 1, ['c']],
    ]);
    expect(report.retryCandidates.map((candidate) => candidate.itemId)).toEqual(['a']);
    expect(report.byCategory).toEqual({ network: 2, not_applicable: 1 });
    expect(report.groups.map((group) => [group.retryable, group.sampleError])).toEqual([
      [2, { message: 'read ECONNRESET on 10.0.0.1', category: 'network' }],
      [0, { message: 'unsupported format', category: 'not_applicable' }],
    ]);
  });

  it('counts a producer’s explicit retryable within a group', () => {
    const state = fold(
      jobFailures,
      given(
        start,
        {
          type: 'item.failed',
          data: { itemId: 'a', error: { message: 'odd result 7', code: 'E1' } },
        },
        {
          type: 'item.failed',
          data: { itemId: 'b', error: { message: 'odd result 7', code: 'E1', retryable: true } },
        },
      ),
    );
    expect(failureGroups(state).map((group) => [group.key, group.count, group.retryable])).toEqual([
      ['unknown: odd result <n>', 2, 1],
    ]);
  });
});

describe('classification', () => {
  it('applies the default rules', () => {
    const cases = [
      { message: 'read ECONNRESET', code: 'ECONNRESET' },
      { message: 'request timed out', name: 'TimeoutError' },
      { message: 'Too Many Requests', status: 429 },
      { message: 'Bad Gateway', status: 502 },
      { message: 'no space', code: 'ENOSPC' },
      { message: 'Forbidden', status: 403 },
      { message: 'odd', category: 'not_applicable', retryable: true },
      { message: 'flaky but final', code: 'ECONNRESET', retryable: false },
      { message: 'something else' },
    ];
    expect(cases.map((facts) => `${facts.message} → ${JSON.stringify(classifyFailure(facts))}`))
      .toMatchInlineSnapshot(`
      [
        "read ECONNRESET → {"category":"network","retryable":true}",
        "request timed out → {"category":"timeout","retryable":true}",
        "Too Many Requests → {"category":"network","retryable":true}",
        "Bad Gateway → {"category":"network","retryable":true}",
        "no space → {"category":"output","retryable":false}",
        "Forbidden → {"category":"auth","retryable":false}",
        "odd → {"category":"not_applicable","retryable":false}",
        "flaky but final → {"category":"network","retryable":false}",
        "something else → {"category":"unknown","retryable":false}",
      ]
    `);
  });

  it('lets producer rules win over the defaults', () => {
    const rules = [{ match: { messagePattern: 'captcha' }, category: 'auth', retryable: true }];
    expect(classifyFailure({ message: 'Captcha required', status: 503 }, rules)).toEqual({
      category: 'auth',
      retryable: true,
    });
  });

  it('describes any thrown value within the bounds', () => {
    const error = Object.assign(new Error('x'.repeat(10_000)), { code: 'ETIMEDOUT' });
    const described = describeError(error);
    expect(described.message.length).toBe(4_000);
    expect(described).toMatchObject({ code: 'ETIMEDOUT', category: 'timeout', retryable: true });
    expect(described.stack!.length).toBeLessThanOrEqual(5);
    expect([
      describeError('plain'),
      describeError(null),
      describeError({ status: 401, message: 'no' }),
      describeError(42),
    ]).toMatchInlineSnapshot(`
      [
        {
          "category": "unknown",
          "message": "plain",
          "retryable": false,
        },
        {
          "category": "unknown",
          "message": "null",
          "retryable": false,
        },
        {
          "category": "auth",
          "message": "no",
          "retryable": false,
        },
        {
          "category": "unknown",
          "message": "42",
          "retryable": false,
        },
      ]
    `);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(describeError(circular).message).toBe('unserialisable thrown value');
  });
});

describe('ETA', () => {
  it('estimates from the smoothed rate with a range, and invents nothing without a total', () => {
    const completions = Array.from({ length: 20 }, (_, index): EventInput => ({
      type: 'item.completed',
      data: { itemId: `i${index}`, durationMs: 1_000 },
    }));
    const state = fold(
      jobEta,
      given(
        { type: 'job.started', data: { name: 'n', kind: 'k', project: 'p', total: 40 } },
        ...completions,
      ),
    );
    const last = state.lastAt!;
    const estimate = estimateEta(state, last);
    expect(estimate.ratePerSecond).toBeCloseTo(1, 5);
    expect(estimate.etaMs).toBeCloseTo(20_000, -1);
    expect(estimate.range!.lowMs).toBeLessThan(estimate.etaMs!);
    expect(estimate.range!.highMs).toBeGreaterThan(estimate.etaMs!);
    expect(estimateEta(state, last + 5_000).etaMs).toBeCloseTo(15_000, -1);

    const unknown = fold(
      jobEta,
      given({ type: 'job.started', data: { name: 'n', kind: 'k', project: 'p' } }, ...completions),
    );
    expect(estimateEta(unknown, last)).toMatchObject({
      total: null,
      etaMs: null,
      range: null,
      processed: 20,
    });
  });

  it('keeps processed over time from the start, at each closed rate window and at the end', () => {
    const state = fold(
      jobEta,
      record(
        [
          start,
          { type: 'item.completed', data: { itemId: 'a' } },
          { type: 'item.completed', data: { itemId: 'b' } },
          { type: 'item.completed', data: { itemId: 'c' } },
          { type: 'x.note', data: { anything: true } },
          { type: 'job.completed', data: {} },
        ].map((event) => ({ streamId: 'job-1', event: event as EventInput })),
        [600],
      ),
    );
    const origin = state.history.at[0]!;
    // Windows close once a second of event time has passed: after b (1.2 s) only.
    expect(state.history.at.map((at) => at - origin)).toEqual([0, 1_200, 3_000]);
    expect(state.history.processed).toEqual([0, 2, 3]);
  });
});

describe('timeline and cross-job views', () => {
  it('describes events in one line', () => {
    const events = given(
      start,
      {
        type: 'item.failed',
        data: { itemId: 'p7', error: { message: 'read ECONNRESET', category: 'network' } },
      },
      { type: 'x.deploy', data: { sha: 'abc' } },
    );
    expect(events.map(describeEvent)).toMatchInlineSnapshot(`
      [
        "job.started "crawl" (crawl, project web), 4 items",
        "item.failed p7 [network] read ECONNRESET",
        "x.deploy {"sha":"abc"}",
      ]
    `);
  });

  it('groups jobs by project and measures stages per kind', () => {
    const facts = [
      { streamId: 'a', event: start },
      {
        streamId: 'b',
        event: { ...start, data: { ...start.data, project: 'shop' } } as EventInput,
      },
      { streamId: 'a', event: { type: 'stage.started', data: { stage: 'fetch' } } as EventInput },
      { streamId: 'a', event: { type: 'item.completed', data: { itemId: 'x' } } as EventInput },
      { streamId: 'a', event: { type: 'job.completed', data: {} } as EventInput },
    ];
    const events = record(facts, [1_000]);
    expect(
      projectSummaries(fold(jobOverviews, events)).map((project) => [
        project.project,
        project.byStatus,
        project.completed,
      ]),
    ).toEqual([
      ['shop', { running: 1 }, 0],
      ['web', { completed: 1 }, 1],
    ]);
    expect(stageFigures(fold(stageMetrics, events))).toMatchObject([
      { kind: 'crawl', stage: 'fetch', runs: 1, itemsPerSecond: 0.5 },
    ]);
  });
});
