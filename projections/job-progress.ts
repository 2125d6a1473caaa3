import type { FailureError, JsonValue } from '../schema/events.ts';
import { isCustomEvent } from '../schema/recorded-event.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { emptyItemTable, getItem, setItems } from './item-table.ts';
import { blankItemRecord, itemUpdates } from './job-items.ts';
import type { ItemStatus } from './job-items.ts';
import type { ItemTable } from './item-table.ts';
import type { Projection } from './projection.ts';
import { own } from './own.ts';

/** A job's lifecycle status. */
export type JobStatus = 'pending' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

/** One run of a stage. */
export interface StageRun {
  name: string;
  startedAt: number;
  endedAt: number | null;
  durationMs: number | null;
  total: number | null;
  /** Item outcomes recorded while this stage was current. */
  processed: number;
}

/** Items by status; planned = pending + inFlight + completed + failed + skipped. */
export interface ItemCounts {
  planned: number;
  pending: number;
  inFlight: number;
  completed: number;
  failed: number;
  skipped: number;
}

/** Where one job stands. */
export interface JobProgressState {
  jobId: string | null;
  /** The last stream version applied; redelivered events at or below it are ignored. */
  version: number;
  name: string | null;
  kind: string | null;
  project: string | null;
  dataset: string | null;
  unit: string | null;
  parentJobId: string | null;
  status: JobStatus;
  startedAt: number | null;
  endedAt: number | null;
  updatedAt: number | null;
  /** The current stage, or the last one once the job has ended. */
  stage: string | null;
  stages: StageRun[];
  declaredStages: { name: string; weight: number }[];
  counts: ItemCounts;
  /** Distinct items named by `items.planned` (others are planned implicitly by their first event). */
  explicitlyPlanned: number;
  /** Outcomes by item type. */
  byType: Record<string, { completed: number; failed: number; skipped: number }>;
  /** Total from job.started, scope changes or reports; null when unknown. */
  declaredTotal: number | null;
  /** The best known total: the declared one or the planned count, whichever is larger. */
  total: number | null;
  /** Items with an outcome, or a larger reported figure; never decreases. */
  processed: number;
  /** 0..100; stage weights count when stages were declared. */
  percent: number;
  reportedPercent: number | null;
  /** Running sums of `progress.reported` counts. */
  reportedCounts: Record<string, number>;
  message: string | null;
  current: string | null;
  lastCheckpoint: { cursor: JsonValue; note: string | null; at: number; version: number } | null;
  lastError: FailureError | null;
  result: JsonValue | null;
  items: ItemTable<ItemStatus>;
}

function initial(): JobProgressState {
  return {
    jobId: null,
    version: 0,
    name: null,
    kind: null,
    project: null,
    dataset: null,
    unit: null,
    parentJobId: null,
    status: 'pending',
    startedAt: null,
    endedAt: null,
    updatedAt: null,
    stage: null,
    stages: [],
    declaredStages: [],
    counts: { planned: 0, pending: 0, inFlight: 0, completed: 0, failed: 0, skipped: 0 },
    explicitlyPlanned: 0,
    byType: {},
    declaredTotal: null,
    total: null,
    processed: 0,
    percent: 0,
    reportedPercent: null,
    reportedCounts: {},
    message: null,
    current: null,
    lastCheckpoint: null,
    lastError: null,
    result: null,
    items: emptyItemTable(),
  };
}

function endStage(stages: StageRun[], at: number): StageRun[] {
  const last = stages.at(-1);
  if (!last || last.endedAt !== null) return stages;
  const endedAt = Math.max(at, last.startedAt);
  return [...stages.slice(0, -1), { ...last, endedAt, durationMs: endedAt - last.startedAt }];
}

function ended(state: JobProgressState, status: JobStatus, at: number): JobProgressState {
  return { ...state, status, endedAt: at, stages: endStage(state.stages, at), current: null };
}

/** Applies item status changes to the counts, by type, and the current stage. */
function applyItems(state: JobProgressState, event: RecordedEvent): JobProgressState {
  // Only statuses are kept here; a status is all the transitions read.
  const updates = itemUpdates((itemId) => {
    const status = getItem(state.items, itemId);
    return status === undefined ? undefined : { ...blankItemRecord, status };
  }, event);
  if (updates.size === 0) return state;
  const counts = { ...state.counts };
  let { explicitlyPlanned } = state;
  const statuses = new Map<string, ItemStatus>();
  let outcomes = 0;
  for (const [itemId, record] of updates) {
    const before = getItem(state.items, itemId);
    if (before === undefined) {
      counts.planned += 1;
      if (event.type === 'items.planned') explicitlyPlanned += 1;
    } else {
      counts[before] -= 1;
    }
    counts[record.status] += 1;
    statuses.set(itemId, record.status);
    if (
      record.status === 'completed' ||
      record.status === 'failed' ||
      record.status === 'skipped'
    ) {
      outcomes += 1;
    }
  }
  let { byType, stages, lastError } = state;
  if (
    event.type === 'item.completed' ||
    event.type === 'item.failed' ||
    event.type === 'item.skipped'
  ) {
    const type = event.data.type ?? 'item';
    const entry = own(byType, type) ?? { completed: 0, failed: 0, skipped: 0 };
    const key =
      event.type === 'item.completed'
        ? 'completed'
        : event.type === 'item.failed'
          ? 'failed'
          : 'skipped';
    byType = { ...byType, [type]: { ...entry, [key]: entry[key] + 1 } };
    if (event.type === 'item.failed') lastError = event.data.error;
    const last = stages.at(-1);
    if (last && last.endedAt === null) {
      stages = [...stages.slice(0, -1), { ...last, processed: last.processed + outcomes }];
    }
  }
  const current = event.type === 'item.started' ? event.data.itemId : state.current;
  return {
    ...state,
    counts,
    explicitlyPlanned,
    byType,
    stages,
    lastError,
    current,
    items: setItems(state.items, statuses),
  };
}

/** Recomputes total, processed and percent after any change. */
function settle(state: JobProgressState): JobProgressState {
  const { counts } = state;
  // Items that only turn up in results say nothing of how many there will be.
  const planned = state.explicitlyPlanned > 0 ? state.explicitlyPlanned : null;
  const total =
    state.declaredTotal === null ? planned : Math.max(state.declaredTotal, planned ?? 0);
  const outcomes = counts.completed + counts.failed + counts.skipped;
  const processed = Math.max(state.processed, outcomes);
  return { ...state, total, processed, percent: computePercent({ ...state, total, processed }) };
}

function computePercent(state: JobProgressState): number {
  if (state.status === 'completed') return 100;
  const { counts } = state;
  const allDone =
    counts.planned > 0 &&
    counts.pending === 0 &&
    counts.inFlight === 0 &&
    (state.total === null || counts.planned >= state.total);
  const overall =
    state.total !== null && state.total > 0
      ? Math.min(1, state.processed / state.total)
      : state.reportedPercent !== null
        ? state.reportedPercent / 100
        : 0;
  const lastDeclared = state.declaredStages.at(-1)?.name;
  if (allDone && (state.declaredStages.length === 0 || state.stage === lastDeclared)) return 100;

  const stageIndex = state.declaredStages.findIndex((stage) => stage.name === state.stage);
  if (stageIndex < 0) return clampPercent(overall * 100, allDone);
  // Stage weights: finished stages count fully, the current one by its own progress.
  const totalWeight = state.declaredStages.reduce((sum, stage) => sum + stage.weight, 0);
  const before = state.declaredStages
    .slice(0, stageIndex)
    .reduce((sum, stage) => sum + stage.weight, 0);
  const run = state.stages.at(-1);
  const stageFraction =
    run && run.total !== null && run.total > 0 ? Math.min(1, run.processed / run.total) : overall;
  const weight = state.declaredStages[stageIndex]!.weight;
  return clampPercent(((before + stageFraction * weight) / totalWeight) * 100, allDone);
}

/** Below 100 unless every item is done, so 100 always means finished. */
function clampPercent(percent: number, allDone: boolean): number {
  const bounded = Math.min(100, Math.max(0, percent));
  return bounded >= 100 && !allDone ? 99.99 : bounded;
}

function evolve(state: JobProgressState, event: RecordedEvent): JobProgressState {
  if (event.version <= state.version) return state;
  const at = event.occurredAt.getTime();
  const base: JobProgressState = {
    ...state,
    jobId: state.jobId ?? event.streamId,
    version: event.version,
    updatedAt: at,
  };
  if (isCustomEvent(event)) return base;
  switch (event.type) {
    case 'job.started': {
      const { data } = event;
      return settle({
        ...base,
        name: data.name,
        kind: data.kind,
        project: data.project,
        dataset: data.dataset ?? null,
        unit: data.unit ?? null,
        parentJobId: data.parentJobId ?? null,
        status: 'running',
        startedAt: at,
        declaredStages: (data.stages ?? []).map((stage) => ({
          name: stage.name,
          weight: stage.weight ?? 1,
        })),
        declaredTotal: data.total ?? base.declaredTotal,
      });
    }
    case 'job.scope_changed':
      return settle({ ...base, declaredTotal: event.data.total });
    case 'stage.started':
      return settle({
        ...base,
        stage: event.data.stage,
        stages: [
          ...endStage(base.stages, at),
          {
            name: event.data.stage,
            startedAt: at,
            endedAt: null,
            durationMs: null,
            total: event.data.total ?? null,
            processed: 0,
          },
        ],
      });
    case 'items.planned':
    case 'item.started':
    case 'item.completed':
    case 'item.failed':
    case 'item.skipped':
    case 'items.released':
      return settle(applyItems(base, event));
    case 'progress.reported': {
      const { data } = event;
      let reportedCounts = base.reportedCounts;
      if (data.counts) {
        const sums = Object.entries(data.counts).map(
          ([key, delta]) => [key, (own(reportedCounts, key) ?? 0) + delta] as const,
        );
        reportedCounts = { ...reportedCounts, ...Object.fromEntries(sums) };
      }
      return settle({
        ...base,
        processed: Math.max(base.processed, data.processed ?? 0),
        declaredTotal: data.total ?? base.declaredTotal,
        reportedPercent: data.percent ?? base.reportedPercent,
        message: data.message ?? base.message,
        current: data.current ?? base.current,
        reportedCounts,
      });
    }
    case 'checkpoint.saved':
      return {
        ...base,
        lastCheckpoint: {
          cursor: event.data.cursor,
          note: event.data.note ?? null,
          at,
          version: event.version,
        },
      };
    case 'log.written':
      return event.data.level === 'error' || event.data.level === 'warn'
        ? { ...base, message: event.data.message }
        : base;
    case 'job.paused':
      return { ...base, status: 'paused' };
    case 'job.resumed':
      return { ...base, status: 'running' };
    case 'job.completed':
      return settle({ ...ended(base, 'completed', at), result: event.data.result ?? null });
    case 'job.failed':
      return settle({ ...ended(base, 'failed', at), lastError: event.data.error });
    case 'job.cancelled':
      return settle(ended(base, 'cancelled', at));
  }
}

/**
 * One job's progress: status, stages with durations, items by status and type, total,
 * processed, percent, message, current item and last checkpoint.
 */
export const jobProgress: Projection<JobProgressState> = {
  name: 'job-progress',
  version: 1,
  initial,
  evolve,
};
