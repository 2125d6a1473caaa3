import type { FailureError, JsonValue } from '../schema/events.ts';
import { isConditionEvent, isCustomEvent } from '../schema/recorded-event.ts';
import type { ConditionRecordedEvent, RecordedEvent } from '../schema/recorded-event.ts';
import type { ConditionName } from '../schema/events.ts';
import { draftedFold } from './drafted-fold.ts';
import type { DraftedFold } from './drafted-fold.ts';
import { emptyItemTable } from './item-table.ts';
import type { ItemTable, ItemWriter } from './item-table.ts';
import { itemStatusAfter } from './job-items.ts';
import type { ItemCounts, ItemStatus } from './job-items.ts';
import {
  furthestStage,
  copyTally,
  movePosition,
  positionStatus,
  stageProgress,
  tallyIndex,
  touchStage,
} from './job-stages.ts';
import type { ItemPosition, StageTallies } from './job-stages.ts';
import type { Projection } from './projection.ts';
import { own, setOwn } from './own.ts';

export type { ItemCounts } from './job-items.ts';

/** A job's lifecycle status. */
import { isFinished } from './job-status.ts';
import type { JobStatus } from './job-status.ts';

export type { JobStatus } from './job-status.ts';

/** A condition the log records as raised: `condition.raised` with no `condition.cleared` since. */
export interface RaisedCondition {
  condition: ConditionName;
  /** When it was raised (epoch ms). */
  since: number;
  /** The version of the `condition.raised` event. */
  version: number;
}

/** How much less each older outcome weighs in the recent failure rate: about the last 50. */
const outcomeDecay = 1 / 50;

/**
 * The failure rate of a job's recent item outcomes (0..1), each older outcome weighing
 * less; null before any outcome.
 *
 * @example
 * recentFailureRate(progress); // 0.62
 */
export function recentFailureRate(
  progress: Pick<JobProgressState, 'recentOutcomes'>,
): number | null {
  const outcomes = progress.recentOutcomes ?? null;
  if (!outcomes || outcomes.weight === 0) return null;
  return outcomes.failed / outcomes.weight;
}

/** One run of a stage. */
export interface StageRun {
  name: string;
  startedAt: number;
  endedAt: number | null;
  durationMs: number | null;
  total: number | null;
  /** Item outcomes recorded while this stage was current. */
  processed: number;
  /** Of those, failures and skips. */
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
  /** Each stage's items, declared stages first (see job-stages.ts). */
  stageTallies: StageTallies;
  /** True while every stage has started at most once: an ended stage is then over. */
  sequentialStages: boolean;
  /** Items by their latest status, whatever the stage. */
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
  /**
   * 0..100: with declared stages, each stage's done fraction weighted; 100 only once the
   * job has completed (or has ended with every item done).
   */
  percent: number;
  reportedPercent: number | null;
  /** Running sums of `progress.reported` counts. */
  reportedCounts: Record<string, number>;
  message: string | null;
  current: string | null;
  lastCheckpoint: { cursor: JsonValue; note: string | null; at: number; version: number } | null;
  /** The job's own stall threshold (`job.started`), ms; null to learn one or use a default. */
  stallAfterMs: number | null;
  /** When the job must be finished by (`job.started`), epoch ms. */
  deadline: number | null;
  /**
   * The latest time any of the job's events occurred, epoch ms. The producer's clock, as
   * `updatedAt`, so a log imported elsewhere folds to the same state.
   */
  lastEventAt: number | null;
  /**
   * The job's recent gap between events, ms (smoothed, each gap weighing 1/8), and how many
   * gaps it has seen: what a learned stall threshold is a multiple of.
   */
  recentGapMs: number | null;
  gaps: number;
  /** A failure rate over the recent outcomes above this is a condition (`job.started`). */
  failureRateAbove: number | null;
  /**
   * The recent outcomes, each older one weighing 1/50 less (see `recentFailureRate`):
   * failures and all outcomes so weighted, and how many outcomes there were.
   */
  recentOutcomes: { failed: number; weight: number; count: number };
  /** The conditions the log records as raised and not yet cleared, with when and at which version. */
  raisedConditions: RaisedCondition[];
  lastError: FailureError | null;
  result: JsonValue | null;
  /** Each item's status, and where it stands in each stage. */
  items: ItemTable<ItemPosition>;
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
    stageTallies: [],
    sequentialStages: true,
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
    stallAfterMs: null,
    deadline: null,
    lastEventAt: null,
    recentGapMs: null,
    gaps: 0,
    failureRateAbove: null,
    recentOutcomes: { failed: 0, weight: 0, count: 0 },
    raisedConditions: [],
    lastError: null,
    result: null,
    items: emptyItemTable(),
  };
}

/**
 * A private copy that `apply` may change in place: every nested object it mutates is
 * copied; the ones it only ever replaces (declared stages, checkpoint, errors, conditions)
 * are shared.
 */
function draftOf(state: JobProgressState): JobProgressState {
  const byType: JobProgressState['byType'] = {};
  for (const [type, entry] of Object.entries(state.byType)) setOwn(byType, type, { ...entry });
  return {
    ...state,
    stages: state.stages.map((run) => ({ ...run })),
    stageTallies: state.stageTallies.map(copyTally),
    counts: { ...state.counts },
    byType,
    reportedCounts: { ...state.reportedCounts },
    recentOutcomes: copyOutcomes(state.recentOutcomes),
  };
}

/**
 * A copy built field by field: a spread copy keeps its numbers boxed, so each change of
 * these running rates, once per outcome, would allocate.
 */
function copyOutcomes(outcomes: JobProgressState['recentOutcomes']) {
  return { failed: outcomes.failed, weight: outcomes.weight, count: outcomes.count };
}

function endStage(stages: StageRun[], at: number): void {
  const last = stages.at(-1);
  if (!last || last.endedAt !== null) return;
  last.endedAt = Math.max(at, last.startedAt);
  last.durationMs = last.endedAt - last.startedAt;
}

function end(draft: JobProgressState, status: JobStatus, at: number): void {
  draft.status = status;
  draft.endedAt = at;
  endStage(draft.stages, at);
  draft.current = null;
}

/** Adds to one status's count: each a named field, which reads faster than a computed key. */
function addCount(counts: ItemCounts, status: ItemStatus, delta: number): void {
  switch (status) {
    case 'pending':
      counts.pending += delta;
      return;
    case 'inFlight':
      counts.inFlight += delta;
      return;
    case 'completed':
      counts.completed += delta;
      return;
    case 'failed':
      counts.failed += delta;
      return;
    case 'skipped':
      counts.skipped += delta;
      return;
  }
}

/**
 * Moves one item to the status the event gives it, job-wide and in its stage, and counts
 * the move. `stage` is the stage the event belongs to, or null.
 */
function moveItem(
  draft: JobProgressState,
  items: ItemWriter<ItemPosition>,
  type: RecordedEvent['type'],
  itemId: string,
  stage: string | null,
  at: number,
): void {
  const before = items.get(itemId);
  const beforeStatus = before === undefined ? undefined : positionStatus(before);
  const after = itemStatusAfter(type, beforeStatus);
  if (after === undefined) return;
  const { counts } = draft;
  if (beforeStatus === undefined) {
    counts.planned += 1;
    if (type === 'items.planned') draft.explicitlyPlanned += 1;
  } else {
    addCount(counts, beforeStatus, -1);
  }
  addCount(counts, after, 1);
  const tallies = draft.stageTallies;
  if (type === 'items.released') {
    items.set(itemId, movePosition(tallies, before, after, furthestStage(before), 'pending'));
    return;
  }
  const index = stage === null || type === 'items.planned' ? -1 : tallyIndex(tallies, stage);
  if (index >= 0) touchStage(tallies[index]!, at, after !== 'inFlight');
  items.set(itemId, movePosition(tallies, before, after, index));
}

/**
 * The stage an item event belongs to: the one it names, else the current one, else the
 * first declared stage; null for a job without stages.
 */
function stageOfItemEvent(draft: JobProgressState, named: string | undefined): string | null {
  return named ?? draft.stage ?? draft.declaredStages[0]?.name ?? null;
}

/** Counts one item outcome by type and against the current stage. */
function countOutcome(
  draft: JobProgressState,
  type: string,
  key: 'completed' | 'failed' | 'skipped',
): void {
  let entry = own(draft.byType, type);
  if (!entry) {
    entry = { completed: 0, failed: 0, skipped: 0 };
    setOwn(draft.byType, type, entry);
  }
  entry[key] += 1;
  // The draft owns its copy (draftOf): changed in place, as it changes with every outcome.
  const recent = draft.recentOutcomes;
  recent.failed = recent.failed * (1 - outcomeDecay) + (key === 'failed' ? 1 : 0);
  recent.weight = recent.weight * (1 - outcomeDecay) + 1;
  recent.count += 1;
  const { stages } = draft;
  const last = stages[stages.length - 1];
  if (last && last.endedAt === null) {
    last.processed += 1;
    if (key !== 'completed') last[key] += 1;
  }
}

/**
 * Raises processed to the outcomes counted so far. It never decreases, so it is kept event
 * by event; total and percent depend on the current state only (see `settleTotals`).
 */
function raiseProcessed(draft: JobProgressState): void {
  const { counts } = draft;
  draft.processed = Math.max(draft.processed, counts.completed + counts.failed + counts.skipped);
}

/** Recomputes total and percent from the current state. */
function settleTotals(draft: JobProgressState): void {
  // Items that only turn up in results say nothing of how many there will be.
  const planned = draft.explicitlyPlanned > 0 ? draft.explicitlyPlanned : null;
  draft.total =
    draft.declaredTotal === null ? planned : Math.max(draft.declaredTotal, planned ?? 0);
  draft.percent = computePercent(draft);
}

function computePercent(state: JobProgressState): number {
  if (state.status === 'completed') return 100;
  const { counts } = state;
  const allDone =
    counts.planned > 0 &&
    counts.pending === 0 &&
    counts.inFlight === 0 &&
    (state.total === null || counts.planned >= state.total);
  const overall = allDone
    ? 1
    : state.total !== null && state.total > 0
      ? Math.min(1, state.processed / state.total)
      : state.reportedPercent !== null
        ? state.reportedPercent / 100
        : 0;
  let fraction = overall;
  if (state.declaredStages.length > 0) {
    // Each declared stage by its own done fraction; one of unknown total by where the job is.
    const current = state.stageTallies.findIndex((tally) => tally.name === state.stage);
    const stages = stageProgress(state.stageTallies, state.total, state.sequentialStages);
    let weighted = 0;
    let totalWeight = 0;
    stages.forEach((stage, index) => {
      if (!stage.declared) return;
      const known =
        stage.fraction ?? (current < 0 ? 0 : index < current ? 1 : index === current ? overall : 0);
      weighted += Math.min(1, known) * stage.weight;
      totalWeight += stage.weight;
    });
    fraction = totalWeight > 0 ? weighted / totalWeight : overall;
  }
  const percent = Math.min(100, Math.max(0, fraction * 100));
  // 100 means finished with nothing left: a running job stops just short of it.
  return percent >= 100 && !(allDone && isFinished(state.status)) ? 99.99 : percent;
}

/** Notes when an event occurred, and smooths the gap since the job's latest one before. */
function noteArrival(draft: JobProgressState, occurredAt: number): void {
  const previous = draft.lastEventAt;
  // An event that occurred before the latest one (a late batch) moves nothing.
  if (previous !== null && occurredAt < previous) return;
  draft.lastEventAt = occurredAt;
  if (previous === null) return;
  const gap = occurredAt - previous;
  draft.recentGapMs =
    draft.recentGapMs === null ? gap : draft.recentGapMs + (gap - draft.recentGapMs) / 8;
  draft.gaps += 1;
}

/**
 * Applies one event to a draft in place: the one definition of the projection, used by
 * `evolve` (on a fresh draft) and the accumulator (on its own); totals are left to
 * `settleTotals`.
 */
function apply(
  draft: JobProgressState,
  items: ItemWriter<ItemPosition>,
  event: RecordedEvent,
): void {
  draft.jobId ??= event.streamId;
  // The server's own record: it moves no time, count or rate the conditions are judged by.
  if (isConditionEvent(event)) return noteCondition(draft, event);
  const at = event.occurredAt.getTime();
  draft.updatedAt = at;
  noteArrival(draft, at);
  if (isCustomEvent(event)) return;
  switch (event.type) {
    case 'job.started': {
      const { data } = event;
      draft.name = data.name;
      draft.kind = data.kind;
      draft.project = data.project;
      draft.dataset = data.dataset ?? null;
      draft.unit = data.unit ?? null;
      draft.parentJobId = data.parentJobId ?? null;
      draft.status = 'running';
      draft.startedAt = at;
      draft.declaredStages = (data.stages ?? []).map((stage) => ({
        name: stage.name,
        weight: stage.weight ?? 1,
      }));
      for (const stage of draft.declaredStages) {
        const tally = draft.stageTallies[tallyIndex(draft.stageTallies, stage.name)];
        if (!tally) continue;
        tally.weight = stage.weight;
        tally.declared = true;
      }
      draft.declaredTotal = data.total ?? draft.declaredTotal;
      draft.stallAfterMs = data.stallAfterMs ?? null;
      draft.deadline = data.deadline === undefined ? null : Date.parse(data.deadline);
      draft.failureRateAbove = data.failureRateAbove ?? null;
      return raiseProcessed(draft);
    }
    case 'job.scope_changed':
      draft.declaredTotal = event.data.total;
      return raiseProcessed(draft);
    case 'stage.started': {
      endStage(draft.stages, at);
      const { stage, total } = event.data;
      const previous = draft.stageTallies.find((tally) => tally.name === draft.stage);
      if (previous && previous.name !== stage) previous.ended = true;
      if (draft.stages.some((run) => run.name === stage)) draft.sequentialStages = false;
      const index = tallyIndex(draft.stageTallies, stage);
      const tally = draft.stageTallies[index];
      if (tally) {
        touchStage(tally, at, false);
        tally.ended = false;
        tally.declaredTotal = total ?? tally.declaredTotal;
      }
      draft.stage = stage;
      draft.stages.push({
        name: event.data.stage,
        startedAt: at,
        endedAt: null,
        durationMs: null,
        total: event.data.total ?? null,
        processed: 0,
        failed: 0,
        skipped: 0,
      });
      return raiseProcessed(draft);
    }
    case 'items.planned':
      for (const item of event.data.items) moveItem(draft, items, event.type, item.id, null, at);
      return raiseProcessed(draft);
    case 'items.released':
      for (const itemId of event.data.itemIds) moveItem(draft, items, event.type, itemId, null, at);
      return raiseProcessed(draft);
    case 'item.started': {
      const stage = stageOfItemEvent(draft, event.data.stage);
      moveItem(draft, items, event.type, event.data.itemId, stage, at);
      draft.current = event.data.itemId;
      return raiseProcessed(draft);
    }
    case 'item.completed': {
      const stage = stageOfItemEvent(draft, event.data.stage);
      moveItem(draft, items, event.type, event.data.itemId, stage, at);
      countOutcome(draft, event.data.type ?? 'item', 'completed');
      return raiseProcessed(draft);
    }
    case 'item.failed': {
      const stage = stageOfItemEvent(draft, event.data.stage ?? event.data.error.stage);
      moveItem(draft, items, event.type, event.data.itemId, stage, at);
      countOutcome(draft, event.data.type ?? 'item', 'failed');
      draft.lastError = event.data.error;
      return raiseProcessed(draft);
    }
    case 'item.skipped': {
      const stage = stageOfItemEvent(draft, event.data.stage);
      moveItem(draft, items, event.type, event.data.itemId, stage, at);
      countOutcome(draft, event.data.type ?? 'item', 'skipped');
      return raiseProcessed(draft);
    }
    case 'progress.reported': {
      const { data } = event;
      if (data.counts) {
        for (const [key, delta] of Object.entries(data.counts)) {
          setOwn(draft.reportedCounts, key, (own(draft.reportedCounts, key) ?? 0) + delta);
        }
      }
      draft.processed = Math.max(draft.processed, data.processed ?? 0);
      draft.declaredTotal = data.total ?? draft.declaredTotal;
      draft.reportedPercent = data.percent ?? draft.reportedPercent;
      draft.message = data.message ?? draft.message;
      draft.current = data.current ?? draft.current;
      return raiseProcessed(draft);
    }
    case 'checkpoint.saved':
      draft.lastCheckpoint = {
        cursor: event.data.cursor,
        note: event.data.note ?? null,
        at,
        version: event.version,
      };
      return;
    case 'log.written':
      if (event.data.level === 'error' || event.data.level === 'warn') {
        draft.message = event.data.message;
      }
      return;
    case 'job.paused':
      draft.status = 'paused';
      return;
    case 'job.resumed':
      draft.status = 'running';
      return;
    case 'job.completed':
      end(draft, 'completed', at);
      draft.result = event.data.result ?? null;
      return raiseProcessed(draft);
    case 'job.failed':
      end(draft, 'failed', at);
      draft.lastError = event.data.error;
      return raiseProcessed(draft);
    case 'job.cancelled':
      end(draft, 'cancelled', at);
      return raiseProcessed(draft);
  }
}

/** Keeps the set of raised conditions in step with the log's `condition.*` records. */
function noteCondition(draft: JobProgressState, event: ConditionRecordedEvent): void {
  const { condition } = event.data;
  const others = draft.raisedConditions.filter((raised) => raised.condition !== condition);
  draft.raisedConditions =
    event.type === 'condition.raised'
      ? [...others, { condition, since: event.occurredAt.getTime(), version: event.version }]
      : others;
}

/** The in-place steps of `jobProgress`, for projections that extend it (`jobEta`). */
export const jobProgressSteps = {
  initial,
  draftOf,
  apply,
  settle: settleTotals,
} satisfies DraftedFold<JobProgressState, ItemPosition> & { initial(): JobProgressState };

/**
 * One job's progress: status, stages with durations, items by status and type, total,
 * processed, percent, message, current item and last checkpoint.
 */
export const jobProgress: Projection<JobProgressState> = {
  name: 'job-progress',
  // 5: conditions recorded in the log, and the recent failure rate.
  version: 5,
  initial,
  ...draftedFold(jobProgressSteps),
};
