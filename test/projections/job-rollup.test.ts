import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { estimateEta, jobEta } from '../../projections/job-eta.ts';
import { rollUp } from '../../projections/job-rollup.ts';
import type { JobView } from '../../projections/job-rollup.ts';
import { fold } from '../../projections/projection.ts';
import { jobHistory } from '../arbitraries.ts';

const ended = new Set(['completed', 'failed', 'cancelled']);

/** Children as the status read shows them: each job's progress and its ETA as of `now`. */
const children = fc.array(jobHistory, { minLength: 1, maxLength: 5 }).map((histories) =>
  histories.map((events, index): JobView => {
    const state = fold(jobEta, events);
    const { items: _items, ...progress } = state.progress;
    return {
      jobId: `child-${index}`,
      progress,
      eta: estimateEta(state, events.at(-1)!.occurredAt.getTime()),
    };
  }),
);

describe('roll-up of a job’s children', () => {
  it('counts every child once, sums their figures, and reads 100 only when all have ended', () => {
    fc.assert(
      fc.property(children, (views) => {
        const rolled = rollUp(views);
        expect(rolled.count).toBe(views.length);
        expect(Object.values(rolled.byStatus).reduce((sum, count) => sum + count, 0)).toBe(
          views.length,
        );
        expect(rolled.processed).toBe(
          views.reduce((sum, view) => sum + view.progress.processed, 0),
        );
        expect(rolled.percent).toBeGreaterThanOrEqual(0);
        expect(rolled.percent).toBeLessThanOrEqual(100);
        const running = views.filter((view) => !ended.has(view.progress.status));
        if (running.length > 0) expect(rolled.percent).toBeLessThan(100);
        // The batch ends with its slowest running child, and is unknown if any cannot tell.
        if (running.some((view) => view.eta.etaMs === null)) expect(rolled.eta.etaMs).toBeNull();
        else expect(rolled.eta.etaMs).toBe(Math.max(0, ...running.map((view) => view.eta.etaMs!)));
      }),
    );
  });
});
