import { isCustomEvent } from '../schema/recorded-event.ts';
import { emptyHistogram, mean, quantile, recordValue } from './histogram.ts';
import type { Histogram } from './histogram.ts';
import type { Projection } from './projection.ts';
import { own } from './own.ts';

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
    }
  >;
  /** By `kind/stage`. */
  stages: Record<string, StageAggregate>;
}

function closeStage(state: StageMetricsState, job: StageMetricsState['jobs'][string], at: number) {
  if (job.stage === null || job.stageStartedAt === null) return state.stages;
  const kind = job.kind ?? '(unknown)';
  const key = `${kind}/${job.stage}`;
  const previous = own(state.stages, key) ?? {
    kind,
    stage: job.stage,
    runs: 0,
    durations: emptyHistogram(),
    items: 0,
  };
  return {
    ...state.stages,
    [key]: {
      ...previous,
      runs: previous.runs + 1,
      durations: recordValue(previous.durations, Math.max(0, at - job.stageStartedAt)),
      items: previous.items + job.stageItems,
    },
  };
}

/** Stage durations and throughput across jobs, per job kind and stage name. */
export const stageMetrics: Projection<StageMetricsState> = {
  name: 'stage-metrics',
  version: 1,
  initial: () => ({ jobs: {}, stages: {} }),
  evolve(state, event) {
    const previous = own(state.jobs, event.streamId) ?? {
      version: 0,
      kind: null,
      stage: null,
      stageStartedAt: null,
      stageItems: 0,
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
          stages = closeStage(state, job, at);
          Object.assign(job, { stage: event.data.stage, stageStartedAt: at, stageItems: 0 });
          break;
        case 'item.completed':
        case 'item.failed':
        case 'item.skipped':
          job.stageItems += 1;
          break;
        case 'job.completed':
        case 'job.failed':
        case 'job.cancelled':
          stages = closeStage(state, job, at);
          Object.assign(job, { stage: null, stageStartedAt: null, stageItems: 0 });
          break;
        case 'job.scope_changed':
        case 'items.planned':
        case 'item.started':
        case 'items.released':
        case 'progress.reported':
        case 'checkpoint.saved':
        case 'log.written':
        case 'job.paused':
        case 'job.resumed':
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
