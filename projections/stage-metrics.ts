import { isCustomEvent } from '../schema/recorded-event.ts';
import { addValue, emptyHistogram, mean, quantile, recordValue } from './histogram.ts';
import type { Histogram } from './histogram.ts';
import type { JobProgressState } from './job-progress.ts';
import type { Projection } from './projection.ts';
import { own, setOwn } from './own.ts';

/** Aggregates of one stage name within one job kind. */
export interface StageAggregate {
  kind: string;
  stage: string;
  runs: number;
  durations: Histogram;
  /** Item results recorded while the stage was current. */
  items: number;
}

/** Stage runs across jobs. */
export interface StageMetricsState {
  /** Per job: its kind, last version applied and the stage it is in. */
  jobs: Record<
    string,
    {
      version: number;
      kind: string | null;
      stage: string | null;
      stageStartedAt: number | null;
      stageItems: number;
      /** Stages item events name, other than the current one: first event, last outcome, items. */
      named: Record<string, { firstAt: number; lastAt: number; items: number }>;
    }
  >;
  /** By `kind/stage`. */
  stages: Record<string, StageAggregate>;
}

type JobStages = StageMetricsState['jobs'][string];

/** Where the aggregate of a stage of a job kind is kept in `StageMetricsState['stages']`. */
const aggregateKey = (kind: string | null, stage: string) => `${kind ?? '(unknown)'}/${stage}`;

const blankAggregate = (kind: string | null, stage: string): StageAggregate => ({
  kind: kind ?? '(unknown)',
  stage,
  runs: 0,
  durations: emptyHistogram(),
  items: 0,
});

/** The aggregates with one more run of `stage`. */
function addRun(
  stages: StageMetricsState['stages'],
  kind: string | null,
  stage: string,
  durationMs: number,
  items: number,
): StageMetricsState['stages'] {
  const key = aggregateKey(kind, stage);
  const previous = own(stages, key) ?? blankAggregate(kind, stage);
  return {
    ...stages,
    [key]: {
      ...previous,
      runs: previous.runs + 1,
      durations: recordValue(previous.durations, Math.max(0, durationMs)),
      items: previous.items + items,
    },
  };
}

function closeStage(stages: StageMetricsState['stages'], job: JobStages, at: number) {
  if (job.stage === null || job.stageStartedAt === null) return stages;
  return addRun(stages, job.kind, job.stage, at - job.stageStartedAt, job.stageItems);
}

/** At the job's end, a run for each stage its item events named, from first event to last outcome. */
function closeNamed(stages: StageMetricsState['stages'], job: JobStages) {
  let next = stages;
  for (const [stage, run] of Object.entries(job.named)) {
    if (run.items > 0) next = addRun(next, job.kind, stage, run.lastAt - run.firstAt, run.items);
  }
  return next;
}

/** Counts an item event in the stage it names, or in the current one. */
function countItem(job: JobStages, named: string | undefined, at: number, outcome: boolean) {
  if (named === undefined || named === job.stage) {
    if (outcome) job.stageItems += 1;
    return;
  }
  const run = own(job.named, named);
  const next = run
    ? {
        ...run,
        lastAt: outcome ? Math.max(run.lastAt, at) : run.lastAt,
        items: run.items + (outcome ? 1 : 0),
      }
    : { firstAt: at, lastAt: at, items: outcome ? 1 : 0 };
  job.named = { ...job.named, [named]: next };
}

/** Stage durations and throughput across jobs, per job kind and stage name. */
export const stageMetrics: Projection<StageMetricsState> = {
  name: 'stage-metrics',
  version: 2,
  initial: () => ({ jobs: {}, stages: {} }),
  evolve(state, event) {
    const previous = own(state.jobs, event.streamId) ?? {
      version: 0,
      kind: null,
      stage: null,
      stageStartedAt: null,
      stageItems: 0,
      named: {},
    };
    if (event.version <= previous.version) return state;
    const job = { ...previous, version: event.version };
    let { stages } = state;
    const at = event.occurredAt.getTime();
    if (!isCustomEvent(event)) {
      switch (event.type) {
        case 'job.started':
          job.kind = event.data.kind;
          break;
        case 'stage.started':
          stages = closeStage(stages, job, at);
          Object.assign(job, { stage: event.data.stage, stageStartedAt: at, stageItems: 0 });
          break;
        case 'item.started':
          countItem(job, event.data.stage, at, false);
          break;
        case 'item.completed':
        case 'item.skipped':
          countItem(job, event.data.stage, at, true);
          break;
        case 'item.failed':
          countItem(job, event.data.stage ?? event.data.error.stage, at, true);
          break;
        case 'job.completed':
        case 'job.failed':
        case 'job.cancelled':
          stages = closeNamed(closeStage(stages, job, at), job);
          Object.assign(job, { stage: null, stageStartedAt: null, stageItems: 0, named: {} });
          break;
        case 'job.scope_changed':
        case 'items.planned':
        case 'items.released':
        case 'progress.reported':
        case 'checkpoint.saved':
        case 'log.written':
        case 'job.paused':
        case 'job.resumed':
        case 'condition.raised':
        case 'condition.cleared':
          break;
      }
    }
    return { jobs: { ...state.jobs, [event.streamId]: job }, stages };
  },
};

/** The figures of one stage. */
export interface StageFigures {
  kind: string;
  stage: string;
  runs: number;
  meanMs: number | null;
  p95Ms: number | null;
  itemsPerSecond: number | null;
}

/** Per kind and stage: runs, mean and p95 durations, and throughput. */
export function stageFigures(state: StageMetricsState): StageFigures[] {
  return Object.values(state.stages)
    .map((aggregate) => ({
      kind: aggregate.kind,
      stage: aggregate.stage,
      runs: aggregate.runs,
      meanMs: mean(aggregate.durations),
      p95Ms: quantile(aggregate.durations, 0.95),
      itemsPerSecond:
        aggregate.durations.sum > 0 ? aggregate.items / (aggregate.durations.sum / 1_000) : null,
    }))
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.stage.localeCompare(b.stage));
}

/** One finished stage run of a job: its stage, duration and item outcomes. */
export interface FinishedStageRun {
  name: string;
  durationMs: number;
  items: number;
}

/**
 * A job's finished stage runs, as `stageMetrics` counts them: each ended `stage.started` run,
 * and for a stage that only item events named, one run from its first event to its last
 * outcome.
 */
export function finishedStageRuns(progress: Omit<JobProgressState, 'items'>): FinishedStageRun[] {
  const runs: FinishedStageRun[] = [];
  for (const run of progress.stages) {
    if (run.durationMs !== null)
      runs.push({ name: run.name, durationMs: run.durationMs, items: run.processed });
  }
  if (progress.endedAt === null) return runs;
  for (const tally of progress.stageTallies) {
    if (progress.stages.some((run) => run.name === tally.name)) continue;
    if (tally.firstAt === null || tally.lastAt === null) continue;
    const items = tally.completed + tally.failed + tally.skipped;
    if (items > 0) runs.push({ name: tally.name, durationMs: tally.lastAt - tally.firstAt, items });
  }
  return runs;
}

/**
 * Per kind and stage: runs, mean and p95 durations, and throughput, from jobs' progress
 * (their finished stage runs): the figures `stageFigures` gives of the `stageMetrics` fold,
 * for readers that hold job states rather than the log.
 *
 * @example
 * const figures = stageMetricsOf(jobs.map((job) => job.progress));
 */
export function stageMetricsOf(
  progresses: Iterable<Omit<JobProgressState, 'items'>>,
): StageFigures[] {
  const stages: StageMetricsState['stages'] = {};
  for (const progress of progresses) {
    for (const run of finishedStageRuns(progress)) {
      const key = aggregateKey(progress.kind, run.name);
      const aggregate = own(stages, key) ?? blankAggregate(progress.kind, run.name);
      aggregate.runs += 1;
      addValue(aggregate.durations, run.durationMs);
      aggregate.items += run.items;
      setOwn(stages, key, aggregate);
    }
  }
  return stageFigures({ jobs: {}, stages });
}
