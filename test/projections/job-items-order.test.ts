import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import {
  allItems,
  itemBreakdown,
  itemRecord,
  jobItems,
  pendingItems,
} from '../../projections/job-items.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import { accumulatorFor, fold } from '../../projections/projection.ts';
import { jobFacts, record } from '../arbitraries.ts';

const start: EventInput = {
  type: 'job.started',
  data: { name: 'split', kind: 'index', project: 'ml' },
};
const given = (...facts: EventInput[]) =>
  record(
    facts.map((event) => ({ streamId: 'job-1', event })),
    [1_000],
  );
const planned = (...items: { id: string; type?: string; group?: string }[]): EventInput => ({
  type: 'items.planned',
  data: { items },
});
const ids = (entries: { itemId: string }[]) => entries.map((entry) => entry.itemId);

const groupNames = ['train', 'test', 'shard-1', '__proto__'] as const;
const stageNames = ['fetch', 'parse'] as const;

/** One job's history whose planned items carry groups and whose item events sometimes name a stage. */
const withGroupsAndStages = fc
  .tuple(
    jobFacts,
    fc.infiniteStream(fc.option(fc.constantFrom(...groupNames), { nil: undefined })),
    fc.infiniteStream(fc.option(fc.constantFrom(...stageNames), { nil: undefined })),
  )
  .map(([facts, groups, stages]) => {
    const group = groups[Symbol.iterator]();
    const stage = stages[Symbol.iterator]();
    const events = facts.map((event): EventInput => {
      if (event.type === 'items.planned') {
        const data = event.data as { items: { id: string; group?: string }[] };
        return {
          ...event,
          data: {
            items: data.items.map((item) => {
              const name = group.next().value as string | undefined;
              return name === undefined ? item : { ...item, group: name };
            }),
          },
        };
      }
      if (['item.started', 'item.completed', 'item.failed', 'item.skipped'].includes(event.type)) {
        const name = stage.next().value as string | undefined;
        if (name !== undefined) {
          return { ...event, data: { ...(event.data as object), stage: name } } as EventInput;
        }
      }
      return event;
    });
    return record(events.map((event) => ({ streamId: 'job-1', event })));
  });

describe('job items in plan order', () => {
  it('given items planned in batches, then pending comes back in plan order, not by hash', () => {
    const names = Array.from({ length: 40 }, (_, index) => `doc-${(index * 7919) % 101}`);
    const state = fold(
      jobItems,
      given(
        start,
        planned(...names.slice(0, 25).map((id) => ({ id }))),
        planned(...names.slice(25).map((id) => ({ id }))),
      ),
    );
    expect(ids(pendingItems(state))).toEqual(names);
    expect(ids(allItems(state))).toEqual(names);
  });

  it('given an item planned twice, then its first planning gives its place, type and group', () => {
    const state = fold(
      jobItems,
      given(
        start,
        planned({ id: 'b', group: 'train' }, { id: 'a' }),
        planned({ id: 'c' }, { id: 'b', type: 'pdf', group: 'test' }),
      ),
    );
    expect(ids(pendingItems(state))).toEqual(['b', 'a', 'c']);
    expect(itemRecord(state, 'b')).toMatchObject({ planIndex: 0, type: null, group: 'train' });
  });

  it('given an item released back to pending, then it keeps its original place', () => {
    const state = fold(
      jobItems,
      given(
        start,
        planned({ id: 'z' }, { id: 'y' }, { id: 'x' }),
        { type: 'item.started', data: { itemId: 'z', worker: 'w1', leaseMs: 1_000 } },
        { type: 'item.started', data: { itemId: 'y' } },
        { type: 'items.released', data: { itemIds: ['z', 'y'], reason: 'lease expired' } },
      ),
    );
    expect(ids(pendingItems(state))).toEqual(['z', 'y', 'x']);
    expect(itemRecord(state, 'z')).toMatchObject({
      status: 'pending',
      attempts: 1,
      worker: null,
      startedAt: null,
    });
  });

  it('given items that were never planned, then they follow the planned ones by first appearance', () => {
    const state = fold(
      jobItems,
      given(
        start,
        { type: 'item.started', data: { itemId: 'late-2' } },
        planned({ id: 'p1' }, { id: 'p2' }),
        { type: 'item.skipped', data: { itemId: 'late-1' } },
        { type: 'item.failed', data: { itemId: 'late-3', error: { message: 'boom' } } },
        { type: 'items.released', data: { itemIds: ['late-2', 'late-3'], reason: 'reset' } },
      ),
    );
    expect(ids(allItems(state))).toEqual(['p1', 'p2', 'late-2', 'late-1', 'late-3']);
    expect(ids(pendingItems(state))).toEqual(['p1', 'p2', 'late-2', 'late-3']);
  });

  it('given an item that turned up before it was planned, then the planning places it and changes nothing else', () => {
    const state = fold(
      jobItems,
      given(
        start,
        planned({ id: 'first' }),
        { type: 'item.started', data: { itemId: 'early' } },
        planned({ id: 'early', group: 'g1', type: 'html' }, { id: 'last' }),
      ),
    );
    expect(ids(allItems(state))).toEqual(['first', 'early', 'last']);
    expect(itemRecord(state, 'early')).toMatchObject({
      status: 'inFlight',
      planIndex: 1,
      group: 'g1',
      type: 'html',
    });
  });
});

describe('item stage', () => {
  it("given item events with and without their own stage, then each item has its latest event's", () => {
    const state = fold(
      jobItems,
      given(
        start,
        planned({ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }),
        { type: 'stage.started', data: { stage: 'fetch' } },
        { type: 'item.started', data: { itemId: 'a' } },
        { type: 'item.started', data: { itemId: 'b', stage: 'parse' } },
        { type: 'item.failed', data: { itemId: 'c', error: { message: 'x', stage: 'ocr' } } },
        {
          type: 'item.failed',
          data: { itemId: 'd', stage: 'embed', error: { message: 'y', stage: 'ocr' } },
        },
        { type: 'stage.started', data: { stage: 'index' } },
        { type: 'item.completed', data: { itemId: 'a' } },
      ),
    );
    expect(itemRecord(state, 'a')?.stage).toBe('index');
    expect(itemRecord(state, 'b')?.stage).toBe('parse');
    // The event's own stage wins over the error's, which wins over the job's.
    expect(itemRecord(state, 'c')?.stage).toBe('ocr');
    expect(itemRecord(state, 'd')?.stage).toBe('embed');
  });

  it('given items planned before any stage, then their stage is null until an event names one', () => {
    const state = fold(
      jobItems,
      given(start, planned({ id: 'a' }), { type: 'stage.started', data: { stage: 'fetch' } }),
    );
    expect(itemRecord(state, 'a')?.stage).toBeNull();
    expect(state.stage).toBe('fetch');
  });
});

describe('item counts by group and type', () => {
  it('given items in groups and of types, then each group and type counts its items by status', () => {
    const state = fold(
      jobItems,
      given(
        start,
        planned(
          { id: 'a', group: 'train', type: 'pdf' },
          { id: 'b', group: 'train', type: 'html' },
          { id: 'c', group: 'test', type: 'pdf' },
          { id: 'd' },
        ),
        { type: 'item.started', data: { itemId: 'a' } },
        { type: 'item.completed', data: { itemId: 'b' } },
        { type: 'item.failed', data: { itemId: 'c', error: { message: 'bad' } } },
        { type: 'item.skipped', data: { itemId: 'd' } },
      ),
    );
    const zero = { pending: 0, inFlight: 0, completed: 0, failed: 0, skipped: 0 };
    expect(itemBreakdown(state)).toEqual({
      counts: { ...zero, planned: 4, inFlight: 1, completed: 1, failed: 1, skipped: 1 },
      groups: [
        { group: 'test', ...zero, planned: 1, failed: 1 },
        { group: 'train', ...zero, planned: 2, inFlight: 1, completed: 1 },
        { group: null, ...zero, planned: 1, skipped: 1 },
      ],
      types: [
        { type: 'html', ...zero, planned: 1, completed: 1 },
        { type: 'pdf', ...zero, planned: 2, inFlight: 1, failed: 1 },
        { type: null, ...zero, planned: 1, skipped: 1 },
      ],
    });
  });

  it('property: counts by group and by type each sum to the job counts, and folding in chunks changes nothing', () => {
    fc.assert(
      fc.property(withGroupsAndStages, fc.nat(), (events, cut) => {
        const state = fold(jobItems, events);
        const { counts, groups, types } = itemBreakdown(state);
        const job = fold(jobProgress, events).counts;
        expect(counts).toEqual(job);
        for (const list of [groups, types]) {
          const sum = { planned: 0, pending: 0, inFlight: 0, completed: 0, failed: 0, skipped: 0 };
          for (const entry of list) {
            for (const key of Object.keys(sum) as (keyof typeof sum)[]) sum[key] += entry[key];
          }
          expect(sum).toEqual(job);
        }
        // Plan order lists every item once; planned ones first, in the order they were planned.
        const ordered = allItems(state);
        expect(new Set(ids(ordered)).size).toBe(ordered.length);
        const places = ordered.map((item) => item.planIndex);
        const plannedPlaces = places.filter((place) => place !== null);
        expect(places.slice(0, plannedPlaces.length)).toEqual(plannedPlaces);
        expect(plannedPlaces).toEqual([...plannedPlaces].sort((a, b) => a - b));

        const at = cut % (events.length + 1);
        const accumulator = accumulatorFor(jobItems, fold(jobItems, events.slice(0, at)));
        for (const event of events.slice(at)) accumulator.add(event);
        expect(accumulator.result()).toEqual(state);
      }),
    );
  });
});

describe('processed', () => {
  it('given a lower processed reported after a higher one, then processed stays at the higher', () => {
    const state = fold(
      jobProgress,
      given(
        { type: 'job.started', data: { name: 'split', kind: 'index', project: 'ml', total: 100 } },
        { type: 'progress.reported', data: { processed: 40, counts: { pages: 3 } } },
        { type: 'progress.reported', data: { processed: 10, counts: { pages: 2 } } },
        { type: 'progress.reported', data: { total: 120 } },
      ),
    );
    expect(state.processed).toBe(40);
    // Counts are deltas, summed; total is absolute, replaced.
    expect(state.reportedCounts).toEqual({ pages: 5 });
    expect(state.total).toBe(120);
  });
});
