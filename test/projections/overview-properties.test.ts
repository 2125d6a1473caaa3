import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { jobEta } from '../../projections/job-eta.ts';
import type { JobSnapshot } from '../../projections/job-rollup.ts';
import {
  defaultFinishedVisibleMs,
  isActive,
  isFinished,
  jobStatuses,
  unfinishedStatuses,
} from '../../projections/job-status.ts';
import { fold } from '../../projections/projection.ts';
import {
  jobOverviewOf,
  jobOverviews,
  projectOverviewOf,
  projectSummaries,
} from '../../projections/project-overview.ts';
import { stageFigures, stageMetrics, stageMetricsOf } from '../../projections/stage-metrics.ts';
import { multiJobLog } from '../arbitraries.ts';

/** The log with each job moved to a project of its own pick, so projects differ. */
const projectLog = fc
  .tuple(
    multiJobLog,
    fc.array(fc.constantFrom('web', 'shop', 'ml'), { minLength: 4, maxLength: 4 }),
  )
  .map(([events, picks]) =>
    events.map((event) => {
      if (event.type !== 'job.started') return event;
      const project = picks[Number(event.streamId.slice('job-'.length)) % picks.length]!;
      return { ...event, data: { ...(event.data as object), project } } as RecordedEvent;
    }),
  );

/** Each job's progress without items, as the stored job states hold it. */
function snapshotsOf(events: readonly RecordedEvent[]): JobSnapshot[] {
  const streams = new Map<string, RecordedEvent[]>();
  for (const event of events)
    streams.set(event.streamId, [...(streams.get(event.streamId) ?? []), event]);
  return [...streams.values()].map((stream) => {
    const { items: _items, ...progress } = fold(jobEta, stream).progress;
    return progress;
  });
}

describe('project overview', () => {
  it("gives each job's record from its progress as the reducer folds it from its events", () => {
    fc.assert(
      fc.property(projectLog, (events) => {
        const folded = fold(jobOverviews, events);
        const fromSnapshots = Object.fromEntries(
          snapshotsOf(events).map((progress) => [progress.jobId, jobOverviewOf(progress)]),
        );
        expect(fromSnapshots).toEqual(folded.jobs);
        expect(projectSummaries({ jobs: fromSnapshots })).toEqual(projectSummaries(folded));
      }),
    );
  });

  it('over snapshots counts the jobs the reducer counts, items by their latest status', () => {
    fc.assert(
      fc.property(projectLog, (events) => {
        const snapshots = snapshotsOf(events);
        const overview = projectOverviewOf(snapshots);
        const summaries = projectSummaries(fold(jobOverviews, events));
        expect(
          overview.map(({ project, jobs, byStatus }) => ({ project, jobs, byStatus })),
        ).toEqual(
          summaries.map(({ project, jobs, byStatus }) => ({
            project,
            jobs: jobs.length,
            byStatus,
          })),
        );
        for (const [index, totals] of overview.entries()) {
          const summary = summaries[index]!;
          // An item's latest result is one of the results recorded; a retry records more.
          expect(totals.completed).toBeLessThanOrEqual(summary.completed);
          expect(totals.failed).toBeLessThanOrEqual(summary.failed);
          expect(totals.skipped).toBeLessThanOrEqual(summary.skipped);
          expect(totals.processed).toBeGreaterThanOrEqual(
            totals.completed + totals.failed + totals.skipped,
          );
          const own = snapshots.filter((progress) => progress.project === totals.project);
          expect(totals.processed).toBe(own.reduce((sum, progress) => sum + progress.processed, 0));
          expect(totals.completed).toBe(
            own.reduce((sum, progress) => sum + progress.counts.completed, 0),
          );
        }
      }),
    );
  });
});

/** The log rewritten: no job declares stages, no item event names one. */
const undeclared = multiJobLog.map((events) =>
  events.map((event) => {
    const data = { ...(event.data as Record<string, unknown>) };
    if (event.type === 'job.started') delete data.stages;
    if (event.type.startsWith('item.')) {
      delete data.stage;
      if (data.error) data.error = { ...data.error, stage: undefined };
    }
    return { ...event, data } as RecordedEvent;
  }),
);

describe('stage metrics', () => {
  // Where both read stage runs the same way (runs opened by stage.started, items naming no
  // stage), the figures from job states (what `ledger.stageMetrics` reads) and the pure fold
  // of the log agree. Outside it they differ by definition: job progress puts an item event
  // that names no stage into the first declared stage and counts every outcome within the
  // current run, while the fold counts only outcomes naming the current stage or none.
  it("over jobs' progress equal the stage-metrics fold, for stage runs started by stage.started", () => {
    fc.assert(
      fc.property(undeclared, (events) => {
        expect(stageMetricsOf(snapshotsOf(events))).toEqual(
          stageFigures(fold(stageMetrics, events)),
        );
      }),
    );
  });
});

describe('job status predicates', () => {
  const status = fc.constantFrom(...jobStatuses);
  const time = fc.integer({ min: 0, max: 2 ** 42 });

  it('finished is the statuses past unfinished, and the list holds each status once', () => {
    expect(new Set(jobStatuses).size).toBe(jobStatuses.length);
    fc.assert(
      fc.property(status, (value) => {
        expect(isFinished(value)).toBe(!unfinishedStatuses.includes(value));
      }),
    );
  });

  it('active is unfinished, or finished within the visible window', () => {
    fc.assert(
      fc.property(
        status,
        fc.option(time, { nil: null }),
        time,
        fc.option(fc.nat(2 ** 31), { nil: undefined }),
        (value, endedAt, now, visibleMs) => {
          const window = visibleMs ?? defaultFinishedVisibleMs;
          const expected = !isFinished(value) || (endedAt !== null && now - endedAt <= window);
          expect(isActive({ status: value, endedAt }, now, visibleMs)).toBe(expected);
          // A longer window never hides a job a shorter one shows.
          if (isActive({ status: value, endedAt }, now, window)) {
            expect(isActive({ status: value, endedAt }, now, window + 1)).toBe(true);
          }
        },
      ),
    );
  });
});
