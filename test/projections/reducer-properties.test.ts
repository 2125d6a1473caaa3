import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventDataSchemas, isEventType } from '../../schema/events.ts';
import type { EventInput } from '../../schema/events.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { estimateEta, historyLimit, jobEta } from '../../projections/job-eta.ts';
import { failureGroups, jobFailures, retryCandidates } from '../../projections/job-failures.ts';
import { allItems, inFlightItems, jobItems, pendingItems } from '../../projections/job-items.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import { stageProgress } from '../../projections/job-stages.ts';
import { jobSummary, summarize } from '../../projections/job-summary.ts';
import { combineProjections } from '../../projections/combine.ts';
import { perStream } from '../../projections/per-stream.ts';
import { accumulatorFor, fold } from '../../projections/projection.ts';
import type { Projection } from '../../projections/projection.ts';
import { jobOverviews } from '../../projections/project-overview.ts';
import { stageMetrics } from '../../projections/stage-metrics.ts';
import { deepFreeze, jobHistory, multiJobLog, record } from '../arbitraries.ts';

const singleJob: Projection<unknown>[] = [
  jobProgress,
  jobItems,
  jobSummary,
  jobFailures,
  jobEta,
] as Projection<unknown>[];
const crossJob: Projection<unknown>[] = [
  jobOverviews,
  stageMetrics,
  perStream(combineProjections({ summary: jobSummary, failures: jobFailures, items: jobItems })),
] as Projection<unknown>[];
const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

/** Events redelivered: each cut point re-sends an earlier slice, as at-least-once delivery does. */
const withRedelivery = (events: RecordedEvent[]) =>
  fc
    .array(fc.tuple(fc.nat(events.length), fc.nat(events.length), fc.nat(events.length)), {
      maxLength: 4,
    })
    .map((repeats) => {
      const delivered = [...events];
      for (const [at, from, length] of repeats.sort((a, b) => b[0] - a[0])) {
        const start = Math.min(from, at);
        delivered.splice(at, 0, ...events.slice(start, Math.min(at, start + length)));
      }
      return delivered;
    });

describe('generated histories', () => {
  it('are valid catalogue events', () => {
    fc.assert(
      fc.property(multiJobLog, (events) => {
        for (const event of events) {
          if (isEventType(event.type))
            expect(eventDataSchemas[event.type].safeParse(event.data).success).toBe(true);
        }
      }),
    );
  });
});

for (const [projections, log] of [
  [singleJob, jobHistory],
  [crossJob, multiJobLog],
] as const) {
  for (const projection of projections) {
    describe(`${projection.name} properties`, () => {
      it('folds in chunks, through a saved JSON state, to the same state as in one go', () => {
        fc.assert(
          fc.property(
            log.chain((events) => fc.tuple(fc.constant(events), fc.nat(events.length))),
            ([events, cut]) => {
              const whole = fold(projection, events);
              const saved = json(fold(projection, events.slice(0, cut)));
              expect(json(fold(projection, events.slice(cut), saved))).toEqual(json(whole));
            },
          ),
        );
      });

      it('ignores redelivered events', () => {
        fc.assert(
          fc.property(
            log.chain((events) => fc.tuple(fc.constant(events), withRedelivery(events))),
            ([events, delivered]) => {
              expect(json(fold(projection, delivered))).toEqual(json(fold(projection, events)));
            },
          ),
        );
      });

      it('accumulates from a saved state to where evolve goes step by step; snapshots stay put', () => {
        fc.assert(
          fc.property(
            log.chain((events) =>
              fc.tuple(fc.constant(events), fc.nat(events.length), fc.nat(events.length)),
            ),
            ([events, a, b]) => {
              const [start, cut] = a <= b ? [a, b] : [b, a];
              const stepwise = [projection.initial()];
              for (const event of events) stepwise.push(projection.evolve(stepwise.at(-1), event));
              // From a saved (JSON, frozen) state: a change to it would throw.
              const accumulator = accumulatorFor(projection, deepFreeze(json(stepwise[start])));
              events.slice(start, cut).forEach((event) => accumulator.add(deepFreeze(event)));
              const snapshot = accumulator.result();
              const snapshotJson = json(snapshot);
              events.slice(cut).forEach((event) => accumulator.add(deepFreeze(event)));
              expect(json(accumulator.result())).toEqual(json(stepwise.at(-1)));
              expect(json(snapshot)).toEqual(json(stepwise[cut]));
              expect(json(snapshot)).toEqual(snapshotJson);
            },
          ),
          { numRuns: 60 },
        );
      });

      it('folds in chunks with evolve alone as it does through accumulators', () => {
        fc.assert(
          fc.property(
            log.chain((events) => fc.tuple(fc.constant(events), fc.nat(events.length))),
            ([events, cut]) => {
              const step = (state: unknown, slice: RecordedEvent[]) =>
                slice.reduce((current, event) => projection.evolve(current, event), state);
              const saved = json(step(projection.initial(), events.slice(0, cut)));
              expect(json(step(saved, events.slice(cut)))).toEqual(json(fold(projection, events)));
            },
          ),
          { numRuns: 60 },
        );
      });

      it('never mutates the state it is given', () => {
        fc.assert(
          fc.property(log, (events) => {
            let state = deepFreeze(projection.initial());
            for (const event of events)
              state = deepFreeze(projection.evolve(state, deepFreeze(event)));
          }),
          { numRuns: 50 },
        );
      });
    });
  }
}

describe('job progress invariants', () => {
  it('conserves items, keeps processed monotone and percent within 0..100', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        let state = jobProgress.initial();
        for (const event of events) {
          const next = jobProgress.evolve(state, event);
          const { planned, pending, inFlight, completed, failed, skipped } = next.counts;
          expect(planned).toBe(pending + inFlight + completed + failed + skipped);
          expect(next.processed).toBeGreaterThanOrEqual(state.processed);
          expect(next.percent).toBeGreaterThanOrEqual(0);
          expect(next.percent).toBeLessThanOrEqual(100);
          if (next.percent === 100) {
            const allDone = planned > 0 && pending === 0 && inFlight === 0;
            expect(next.status === 'completed' || allDone).toBe(true);
          }
          state = next;
        }
        // The item table agrees with the counts, status by status.
        const items = fold(jobItems, events);
        expect(allItems(items)).toHaveLength(state.counts.planned);
        for (const status of ['pending', 'inFlight', 'completed', 'failed', 'skipped'] as const) {
          expect(allItems(items).filter((item) => item.status === status)).toHaveLength(
            state.counts[status],
          );
        }
      }),
    );
  });

  it('lists pending and in-flight items from the open ones alone, as a walk of every item would', () => {
    fc.assert(
      fc.property(jobHistory, fc.nat(), (events, cut) => {
        // Step by step to a point, then in bulk: both paths keep the open items.
        const split = cut % (events.length + 1);
        let state = jobItems.initial();
        for (const event of events.slice(0, split)) state = jobItems.evolve(state, event);
        state = fold(jobItems, events.slice(split), state);
        const all = allItems(state);
        const openIds = state.open.flatMap((bucket) => Object.keys(bucket)).sort();
        const expectedOpen = all
          .filter((item) => item.status === 'pending' || item.status === 'inFlight')
          .map((item) => item.itemId)
          .sort();
        expect(openIds).toEqual(expectedOpen);
        expect(pendingItems(state)).toEqual(all.filter((item) => item.status === 'pending'));
        expect(inFlightItems(state)).toEqual(all.filter((item) => item.status === 'inFlight'));
      }),
    );
  });

  it('reaches 100 only once the job completes, every planned item done, without stages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('completed', 'failed', 'skipped'), {
          minLength: 1,
          maxLength: 30,
        }),
        (outcomes) => {
          const facts = [
            { type: 'job.started', data: { name: 'j', kind: 'k', project: 'p' } },
            {
              type: 'items.planned',
              data: { items: outcomes.map((_, index) => ({ id: `i${index}` })) },
            },
            ...outcomes.map((outcome, index) =>
              outcome === 'failed'
                ? { type: 'item.failed', data: { itemId: `i${index}`, error: { message: 'x' } } }
                : { type: `item.${outcome}`, data: { itemId: `i${index}` } },
            ),
            { type: 'job.completed', data: {} },
          ];
          const events = facts.map((fact, index) => ({
            ...fact,
            streamId: 'j',
            version: index + 1,
            position: BigInt(index + 1),
            occurredAt: new Date(1_000 * index),
            recordedAt: new Date(1_000 * index),
          })) as unknown as RecordedEvent[];
          let state = jobProgress.initial();
          for (const [index, event] of events.entries()) {
            state = jobProgress.evolve(state, event);
            expect(state.percent === 100).toBe(index === events.length - 1);
            // Every item done, the job still running: just short of 100.
            if (index === events.length - 2) expect(state.percent).toBe(99.99);
          }
        },
      ),
    );
  });
});

describe('ETA invariants', () => {
  it('is never negative and its range holds the point', () => {
    fc.assert(
      fc.property(jobHistory, fc.integer({ min: -5_000, max: 10_000_000 }), (events, offset) => {
        const state = fold(jobEta, events);
        const last = events.at(-1)!.occurredAt.getTime();
        const estimate = estimateEta(state, last + offset);
        if (estimate.etaMs !== null) {
          expect(estimate.etaMs).toBeGreaterThanOrEqual(0);
          expect(estimate.range!.lowMs).toBeLessThanOrEqual(estimate.etaMs);
          expect(estimate.range!.highMs).toBeGreaterThanOrEqual(estimate.etaMs);
        }
        // Nothing is invented: with no known total, a running job has a rate and no ETA.
        if (estimate.total === null && state.progress.endedAt === null)
          expect(estimate.etaMs).toBeNull();
        if (estimate.ratePerSecond !== null) expect(estimate.ratePerSecond).toBeGreaterThan(0);
      }),
    );
  });
});

describe('throughput history invariants', () => {
  /** Checks what every history must satisfy, against the progress it was folded with. */
  const expectSoundHistory = (state: ReturnType<typeof jobEta.initial>) => {
    const { at, processed } = state.history;
    expect(at).toHaveLength(processed.length);
    expect(at.length).toBeLessThanOrEqual(historyLimit);
    for (let index = 1; index < at.length; index += 1) {
      expect(at[index]!).toBeGreaterThan(at[index - 1]!);
      expect(processed[index]!).toBeGreaterThanOrEqual(processed[index - 1]!);
    }
    if (processed.length > 0)
      expect(processed.at(-1)!).toBeLessThanOrEqual(state.progress.processed);
  };

  it('keeps times rising, processed monotone and never past the progress', () => {
    fc.assert(fc.property(jobHistory, (events) => expectSoundHistory(fold(jobEta, events))));
  });

  it('stays bounded over long jobs, from the start to the final count', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 200, max: 4_000 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 5 }),
        (items, gaps, cutShare) => {
          const facts: EventInput[] = [
            { type: 'job.started', data: { name: 'j', kind: 'k', project: 'p', total: items } },
            ...Array.from({ length: items }, (_, index): EventInput => ({
              type: 'item.completed',
              data: { itemId: `i${index}` },
            })),
            { type: 'job.completed', data: {} },
          ];
          const events = record(
            facts.map((event) => ({ streamId: 'j', event })),
            gaps,
          );
          const state = fold(jobEta, events);
          expectSoundHistory(state);
          // Thinning depends on the samples alone: folding through a saved state agrees.
          const cut = Math.floor(events.length / cutShare);
          const saved = json(fold(jobEta, events.slice(0, cut)));
          expect(json(fold(jobEta, events.slice(cut), saved))).toEqual(json(state));
          expect(state.history.at[0]).toBe(events[0]!.occurredAt.getTime());
          expect(state.history.at.at(-1)).toBe(events.at(-1)!.occurredAt.getTime());
          expect(state.history.processed.at(-1)).toBe(items);
          // With every gap a full rate window, each completion is a sample: all of them
          // while they fit, and at least half the limit once thinned.
          if (Math.min(...gaps) >= 1_000) {
            const samples = items + 2;
            if (samples <= historyLimit) expect(state.history.at).toHaveLength(samples);
            else expect(state.history.at.length).toBeGreaterThan(historyLimit / 2);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('stage invariants', () => {
  it('counts in each stage run exactly the outcomes recorded while it was open', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        // The stage runs, counted independently: a stage is open from its start to the next
        // stage or the job's end.
        const runs: { processed: number; failed: number; skipped: number }[] = [];
        let open = false;
        for (const event of events) {
          if (event.type === 'stage.started') {
            runs.push({ processed: 0, failed: 0, skipped: 0 });
            open = true;
          } else if (['job.completed', 'job.failed', 'job.cancelled'].includes(event.type)) {
            open = false;
          } else if (open && event.type.startsWith('item.') && event.type !== 'item.started') {
            const run = runs.at(-1)!;
            run.processed += 1;
            if (event.type === 'item.failed') run.failed += 1;
            if (event.type === 'item.skipped') run.skipped += 1;
          }
        }
        const state = fold(jobProgress, events);
        expect(
          state.stages.map(({ processed, failed, skipped }) => ({ processed, failed, skipped })),
        ).toEqual(runs);
      }),
    );
  });
});

describe('items × stages invariants', () => {
  /**
   * Where each item stands in each stage, recounted naively from the events: the stage an
   * event names, else the current one, else the first declared.
   */
  function recount(events: RecordedEvent[]) {
    const order: string[] = [];
    const declared: string[] = [];
    const statusOf = new Map<string, string>();
    const byItem = new Map<string, Map<string, string>>();
    let current: string | null = null;
    const indexOf = (stage: string) => {
      if (!order.includes(stage)) order.push(stage);
      return order.indexOf(stage);
    };
    for (const event of events) {
      const data = event.data as Record<string, unknown> & { itemId?: string };
      if (event.type === 'job.started') {
        for (const stage of (data.stages as { name: string }[] | undefined) ?? []) {
          declared.push(stage.name);
          indexOf(stage.name);
        }
      } else if (event.type === 'stage.started') {
        current = data.stage as string;
        indexOf(current);
      } else if (event.type === 'items.released') {
        for (const itemId of data.itemIds as string[]) {
          const status = statusOf.get(itemId);
          if (status !== 'inFlight' && status !== 'failed') continue;
          statusOf.set(itemId, 'pending');
          const stages = byItem.get(itemId);
          if (!stages) continue;
          const furthest = [...stages.keys()].sort((a, b) => indexOf(b) - indexOf(a))[0]!;
          const there = stages.get(furthest);
          if (there === 'inFlight' || there === 'failed') stages.set(furthest, 'pending');
        }
      } else if (event.type.startsWith('item.')) {
        const status = {
          started: 'inFlight',
          completed: 'completed',
          failed: 'failed',
          skipped: 'skipped',
        }[event.type.slice('item.'.length)]!;
        statusOf.set(data.itemId!, status);
        const named =
          (data.stage as string | undefined) ??
          (data.error as { stage?: string } | undefined)?.stage ??
          current ??
          declared[0] ??
          null;
        if (named === null) continue;
        const index = indexOf(named);
        const stages = byItem.get(data.itemId!) ?? new Map<string, string>();
        byItem.set(data.itemId!, stages);
        for (const [stage, there] of stages) {
          if (indexOf(stage) < index && there === 'inFlight') stages.set(stage, 'completed');
        }
        stages.set(named, status);
      }
    }
    return order.map((name) => {
      const counts = { name, inFlight: 0, completed: 0, failed: 0, skipped: 0 };
      for (const stages of byItem.values()) {
        const status = stages.get(name);
        if (status && status !== 'pending') counts[status as 'inFlight'] += 1;
      }
      return counts;
    });
  }

  it('counts each item once per stage, conserved against every stage total, percent below 100 while running', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        let state = jobProgress.initial();
        for (const event of events) {
          state = jobProgress.evolve(state, event);
          for (const stage of stageProgress(
            state.stageTallies,
            state.total,
            state.sequentialStages,
          )) {
            for (const count of [stage.inFlight, stage.completed, stage.failed, stage.skipped]) {
              expect(count).toBeGreaterThanOrEqual(0);
            }
            if (stage.total !== null) {
              expect(stage.pending).toBeGreaterThanOrEqual(0);
              expect(
                stage.pending! + stage.inFlight + stage.completed + stage.failed + stage.skipped,
              ).toBe(stage.total);
              expect(stage.fraction).toBeGreaterThanOrEqual(0);
              expect(stage.fraction).toBeLessThanOrEqual(1);
            }
          }
          if (!['completed', 'failed', 'cancelled'].includes(state.status)) {
            expect(state.percent).toBeLessThan(100);
          }
        }
        expect(
          state.stageTallies.map(({ name, inFlight, completed, failed, skipped }) => ({
            name,
            inFlight,
            completed,
            failed,
            skipped,
          })),
        ).toEqual(recount(events));
      }),
    );
  });

  it('gives every stage a time left of zero or more, and a job with work left an ETA above zero', () => {
    fc.assert(
      fc.property(jobHistory, fc.integer({ min: 0, max: 10_000_000 }), (events, offset) => {
        const state = fold(jobEta, events);
        const now = events.at(-1)!.occurredAt.getTime() + offset;
        const estimate = estimateEta(state, now, { stageRates: { index: 2, embed: null } });
        for (const stage of estimate.stages) {
          if (stage.etaMs !== null) expect(stage.etaMs).toBeGreaterThanOrEqual(0);
          expect(stage.basis === 'done').toBe(
            stage.total !== null && stage.total === stage.completed + stage.failed + stage.skipped,
          );
        }
        const workLeft = estimate.stages.some((stage) => stage.basis !== 'done');
        const running = !['completed', 'failed', 'cancelled'].includes(state.progress.status);
        if (
          state.progress.declaredStages.length > 0 &&
          running &&
          workLeft &&
          estimate.etaMs !== null
        ) {
          expect(estimate.etaMs).toBeGreaterThan(0);
        }
      }),
    );
  });
});

const countOf = (events: RecordedEvent[], type: string) =>
  events.filter((event) => event.type === type).length;

describe('failure invariants', () => {
  it('groups every failure once, with no more retryable ones than failures', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        const groups = failureGroups(fold(jobFailures, events));
        const total = groups.reduce((sum, group) => sum + group.count, 0);
        expect(total).toBe(countOf(events, 'item.failed') + countOf(events, 'job.failed'));
        for (const group of groups) {
          expect(group.retryable).toBeGreaterThanOrEqual(0);
          expect(group.retryable).toBeLessThanOrEqual(group.count);
          expect(group.sampleError.message).toBe(group.sample);
        }
      }),
    );
  });

  it('never offers an item for retry whose latest outcome is a success or a skip', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        const latest = new Map<string, string>();
        for (const event of events) {
          if (
            event.type === 'item.completed' ||
            event.type === 'item.failed' ||
            event.type === 'item.skipped'
          ) {
            latest.set(event.data.itemId, event.type);
          }
        }
        for (const candidate of retryCandidates(fold(jobFailures, events))) {
          expect(latest.get(candidate.itemId)).toBe('item.failed');
        }
      }),
    );
  });

  it('summary counts match the progress counts', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        const figures = summarize(fold(jobSummary, events));
        const progress = fold(jobProgress, events);
        expect([figures.completed, figures.failed, figures.skipped]).toEqual([
          progress.counts.completed,
          progress.counts.failed,
          progress.counts.skipped,
        ]);
        if (figures.durations.p50 !== null) {
          expect(figures.durations.p50).toBeGreaterThanOrEqual(figures.durations.min!);
          expect(figures.durations.p99!).toBeLessThanOrEqual(figures.durations.max!);
        }
      }),
    );
  });
});
