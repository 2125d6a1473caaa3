import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  defaultConditionSettings,
  jobConditions,
  noConditions,
  stallThreshold,
} from '../../projections/job-conditions.ts';
import type { ConditionFacts, ConditionSettings } from '../../projections/job-conditions.ts';
import { jobProgress, recentFailureRate } from '../../projections/job-progress.ts';
import type { JobProgressState } from '../../projections/job-progress.ts';
import { isConditionEvent } from '../../schema/recorded-event.ts';
import type { EventInput } from '../../schema/events.ts';
import { conditionChanges } from '../../src/alerts/condition-changes.ts';
import { fold } from '../../projections/projection.ts';
import { jobStatuses } from '../../projections/job-status.ts';
import { isFinished } from '../../projections/job-status.ts';
import { jobHistory, record } from '../arbitraries.ts';

// Stalled, at risk and late are pure functions of a job's facts and `now`.

const day = 24 * 60 * 60 * 1_000;
const time = fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) });

const facts: fc.Arbitrary<ConditionFacts> = fc.record({
  status: fc.constantFrom(...jobStatuses),
  stallAfterMs: fc.option(fc.integer({ min: 1, max: 30 * day }), { nil: null }),
  deadline: fc.option(time, { nil: null }),
  lastEventAt: fc.option(time, { nil: null }),
  recentGapMs: fc.option(fc.integer({ min: 0, max: day }), { nil: null }),
  gaps: fc.integer({ min: 0, max: 1_000 }),
});

const settings: fc.Arbitrary<ConditionSettings> = fc.record({
  defaultStallAfterMs: fc.integer({ min: 1, max: day }),
  learnedGapMultiple: fc.integer({ min: 1, max: 100 }),
  stallFloorMs: fc.integer({ min: 0, max: day }),
  gapsToLearn: fc.integer({ min: 1, max: 100 }),
  defaultFailureRateAbove: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
  failureRateMinOutcomes: fc.integer({ min: 1, max: 100 }),
});

const range = fc.option(
  fc
    .tuple(fc.integer({ min: 0, max: 30 * day }), fc.integer({ min: 0, max: 30 * day }))
    .map(([a, b]) => ({ range: { lowMs: Math.min(a, b), highMs: Math.max(a, b) } })),
  { nil: null },
);

describe('job conditions', () => {
  it('property: a finished job is never stalled, at risk or late', () => {
    fc.assert(
      fc.property(facts, range, time, settings, (job, eta, now, chosen) => {
        fc.pre(isFinished(job.status));
        expect(jobConditions(job, eta, now, chosen)).toEqual(noConditions);
      }),
    );
  });

  it('property: stalled exactly when a running job has been silent past its threshold, and stays so as time passes', () => {
    fc.assert(
      fc.property(
        facts,
        time,
        fc.integer({ min: 0, max: day }),
        settings,
        (job, now, later, chosen) => {
          const { stalled } = jobConditions(job, null, now, chosen);
          const { thresholdMs, basis } = stallThreshold(job, chosen);
          const silent = job.lastEventAt === null ? null : now - job.lastEventAt;
          const expected = job.status === 'running' && silent !== null && silent > thresholdMs;
          expect(stalled !== null).toBe(expected);
          if (stalled) {
            expect(stalled).toEqual({
              thresholdMs,
              basis,
              lastEventAt: job.lastEventAt,
              silentMs: silent,
            });
            expect(jobConditions(job, null, now + later, chosen).stalled).not.toBeNull();
          }
        },
      ),
    );
  });

  it("property: the job's own threshold wins, a learned one never goes below the floor, else the default", () => {
    fc.assert(
      fc.property(facts, settings, (job, chosen) => {
        const threshold = stallThreshold(job, chosen);
        if (job.stallAfterMs !== null) {
          expect(threshold).toEqual({ thresholdMs: job.stallAfterMs, basis: 'job' });
        } else if (job.gaps >= chosen.gapsToLearn && job.recentGapMs !== null) {
          expect(threshold.basis).toBe('learned');
          expect(threshold.thresholdMs).toBeGreaterThanOrEqual(chosen.stallFloorMs);
          expect(threshold.thresholdMs).toBeGreaterThanOrEqual(
            Math.round(job.recentGapMs * chosen.learnedGapMultiple),
          );
        } else {
          expect(threshold).toEqual({ thresholdMs: chosen.defaultStallAfterMs, basis: 'default' });
        }
      }),
    );
  });

  it('property: late once an unfinished job passes its deadline; at risk before that when the slow end of its ETA passes it', () => {
    fc.assert(
      fc.property(facts, range, time, (job, eta, now) => {
        const { atRisk, late } = jobConditions(job, eta, now);
        const open = !isFinished(job.status) && job.deadline !== null;
        expect(late !== null).toBe(open && now > job.deadline!);
        if (late) expect(late).toEqual({ deadline: job.deadline, overdueMs: now - job.deadline! });
        const risky =
          open && now <= job.deadline! && eta !== null && now + eta.range.highMs > job.deadline!;
        expect(atRisk !== null).toBe(risky);
        if (atRisk) expect(atRisk.expectedBy).toBe(now + eta!.range.highMs);
        // Never both: a late job is past being at risk.
        expect(atRisk !== null && late !== null).toBe(false);
      }),
    );
  });

  it('property: a folded job is never stalled at the moment its last event was stored', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        const progress = fold(jobProgress, events);
        // Condition records are the server's, not the job's: they move no time.
        const producers = events.filter((event) => !isConditionEvent(event));
        const last = Math.max(...producers.map((event) => event.occurredAt.getTime()));
        expect(progress.lastEventAt).toBe(last);
        expect(jobConditions(progress, null, last).stalled).toBeNull();
      }),
    );
  });

  it('learns a threshold from the gaps between appends, and reads stallAfterMs and deadline from job.started', () => {
    const started = {
      type: 'job.started',
      data: {
        name: 'crawl',
        kind: 'crawl',
        project: 'web',
        stallAfterMs: 5_000,
        deadline: '2026-11-02T00:00:00.000Z',
      },
    } as const;
    const items = Array.from({ length: 30 }, (_, index) => ({
      type: 'item.completed' as const,
      data: { itemId: `i${index}` },
    }));
    const events = record(
      [started, ...items].map((event) => ({ streamId: 'job-1', event })),
      [2_000],
    );
    const progress = fold(jobProgress, events);
    expect(progress.stallAfterMs).toBe(5_000);
    expect(progress.deadline).toBe(Date.parse('2026-11-02T00:00:00.000Z'));
    expect(progress.gaps).toBe(30);
    expect(progress.recentGapMs).toBe(2_000);
    expect(stallThreshold(progress)).toEqual({ thresholdMs: 5_000, basis: 'job' });
    const unset = { ...progress, stallAfterMs: null };
    // 10 × 2 s = 20 s, below the 1-minute floor.
    expect(stallThreshold(unset)).toEqual({ thresholdMs: 60_000, basis: 'learned' });
    expect(stallThreshold({ ...unset, gaps: 3 })).toEqual({
      thresholdMs: defaultConditionSettings.defaultStallAfterMs,
      basis: 'default',
    });
  });

  it('property: condition records move no figure of the job, only the set of raised conditions', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        const producers = events.filter((event) => !isConditionEvent(event));
        const figures = (progress: JobProgressState) => {
          const {
            version: _v,
            raisedConditions: _r,
            lastCheckpoint,
            items: _i,
            ...rest
          } = progress;
          return { ...rest, checkpoint: lastCheckpoint?.cursor ?? null };
        };
        expect(figures(fold(jobProgress, events))).toEqual(figures(fold(jobProgress, producers)));
      }),
    );
  });

  it('property: the raised set follows the last record of each condition', () => {
    fc.assert(
      fc.property(jobHistory, (events) => {
        const latest = new Map<string, string>();
        for (const event of events) {
          if (isConditionEvent(event)) latest.set(event.data.condition, event.type);
        }
        const raised = fold(jobProgress, events).raisedConditions.map((entry) => entry.condition);
        const expected = [...latest].filter(([, type]) => type === 'condition.raised');
        expect(new Set(raised)).toEqual(new Set(expected.map(([condition]) => condition)));
      }),
    );
  });

  it('property: failing exactly when enough recent outcomes fail more often than the threshold', () => {
    fc.assert(
      fc.property(jobHistory, settings, time, (events, chosen, now) => {
        const progress = fold(jobProgress, events);
        const { failureRate } = jobConditions(progress, null, now, chosen);
        const rate = recentFailureRate(progress);
        const threshold = progress.failureRateAbove ?? chosen.defaultFailureRateAbove;
        const expected =
          !isFinished(progress.status) &&
          threshold !== null &&
          progress.recentOutcomes.count >= chosen.failureRateMinOutcomes &&
          rate !== null &&
          rate > threshold;
        expect(failureRate !== null).toBe(expected);
        if (rate !== null) {
          expect(rate).toBeGreaterThanOrEqual(0);
          expect(rate).toBeLessThanOrEqual(1 + 1e-9);
        }
      }),
    );
  });

  it('property: recording the changes judged leaves nothing more to record at the same moment', () => {
    fc.assert(
      fc.property(jobHistory, range, time, settings, (events, eta, now, chosen) => {
        const progress = fold(jobProgress, events);
        const conditions = jobConditions(progress, eta, now, chosen);
        const changes = conditionChanges(progress, conditions, now);
        const recorded = record(
          [...events.map((event) => ({ type: event.type, data: event.data })), ...changes].map(
            (event) => ({ streamId: 'job-1', event: event as EventInput }),
          ),
        );
        const after = fold(jobProgress, recorded);
        expect(conditionChanges(after, conditions, now)).toEqual([]);
        if (!isFinished(progress.status)) {
          const holding = Object.values(conditions).filter((value) => value !== null).length;
          expect(after.raisedConditions).toHaveLength(holding);
        }
      }),
    );
  });
});
