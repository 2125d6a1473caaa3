import { isConditionEvent, isCustomEvent } from '../schema/recorded-event.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { draftedFold } from './drafted-fold.ts';
import type { ItemWriter } from './item-table.ts';
import { jobProgressSteps } from './job-progress.ts';
import type { JobProgressState } from './job-progress.ts';
import { doneIn, stageProgress } from './job-stages.ts';
import type { ItemPosition, StageProgress } from './job-stages.ts';
import type { Projection } from './projection.ts';
import { isFinished } from './job-status.ts';

/** Rate windows close after this much event time. */
const windowMs = 1_000;
/** Weight of the past in the moving average (tqdm's smoothing of 0.3 is 1 - 0.7). */
const beta = 0.7;
/** Most samples the history keeps; when it is full every other one is dropped. */
export const historyLimit = 128;

/**
 * Processed over event time, for charts: a sample at the start, at each closed rate window
 * and at the end. Parallel arrays keep the stored state small. Bounded by `historyLimit`:
 * when full, every other sample goes, the first and last stay, so the spacing doubles.
 */
export interface ThroughputHistory {
  at: number[];
  processed: number[];
}

/** A measured rate: work over event time in windows, smoothed. */
export interface RateWindow {
  windowStart: number | null;
  windowWork: number;
  lastAt: number | null;
  /** Exponential moving average of the rate (items/s), before bias correction. */
  ema: number;
  emaSteps: number;
  /** Welford sums over window rates, for the range. */
  rates: { n: number; mean: number; m2: number };
}

/** Running figures behind one job's ETA: the job's own rate, and each stage's. */
export interface JobEtaState extends RateWindow {
  progress: JobProgressState;
  /** Welford sums over item durations, for the range. */
  durations: { n: number; mean: number; m2: number };
  history: ThroughputHistory;
  /** One rate per stage tally, in the same order. */
  stageRates: RateWindow[];
}

/** A copy built field by field, so every window keeps one shape. */
function copyWindow(window: RateWindow): RateWindow {
  return {
    windowStart: window.windowStart,
    windowWork: window.windowWork,
    lastAt: window.lastAt,
    ema: window.ema,
    emaSteps: window.emaSteps,
    rates: window.rates,
  };
}

function emptyWindow(): RateWindow {
  return {
    windowStart: null,
    windowWork: 0,
    lastAt: null,
    ema: 0,
    emaSteps: 0,
    rates: { n: 0, mean: 0, m2: 0 },
  };
}

function welford(stats: { n: number; mean: number; m2: number }, value: number) {
  const n = stats.n + 1;
  const delta = value - stats.mean;
  const mean = stats.mean + delta / n;
  return { n, mean, m2: stats.m2 + delta * (value - mean) };
}

/**
 * The history with one more sample, replacing the last when it has the same time. Times
 * never go back, whatever the producers' clocks do.
 */
function withSample(
  history: ThroughputHistory,
  time: number,
  processed: number,
): ThroughputHistory {
  const last = history.at.length - 1;
  const at = last >= 0 ? Math.max(time, history.at[last]!) : time;
  if (last >= 0 && history.at[last] === at) {
    if (history.processed[last] === processed) return history;
    return { at: history.at, processed: [...history.processed.slice(0, last), processed] };
  }
  let next = { at: [...history.at, at], processed: [...history.processed, processed] };
  if (next.at.length > historyLimit) {
    const keep = (_: number, index: number) => index % 2 === 0 || index === next.at.length - 1;
    next = { at: next.at.filter(keep), processed: next.processed.filter(keep) };
  }
  return next;
}

/**
 * A copy that `apply` may change in place; the Welford sums and the history are replaced,
 * never changed.
 */
function draftOf(state: JobEtaState): JobEtaState {
  return {
    ...state,
    progress: jobProgressSteps.draftOf(state.progress),
    stageRates: state.stageRates.map(copyWindow),
  };
}

/**
 * Counts `work` done at `at` into a rate window; returns true when that closed the window
 * (a new rate sample). A window not yet open opens at `openedAt`.
 */
function addWork(window: RateWindow, at: number, work: number, openedAt: number): boolean {
  const windowStart = window.windowStart ?? openedAt;
  window.windowWork += work;
  window.lastAt = at;
  if (at - windowStart < windowMs) {
    window.windowStart = windowStart;
    return false;
  }
  const rate = window.windowWork / ((at - windowStart) / 1_000);
  window.windowStart = at;
  window.windowWork = 0;
  window.ema = beta * window.ema + (1 - beta) * rate;
  window.emaSteps += 1;
  window.rates = welford(window.rates, rate);
  return true;
}

/**
 * Each stage's done count before an event, to measure what it did in each. One buffer,
 * reused: folding is synchronous, and nothing of it outlives one `apply`.
 */
const doneBefore: number[] = [];

/** Moves each stage's rate window by the work the event did there. */
function advanceStages(
  draft: JobEtaState,
  stagesBefore: number,
  at: number,
  previousAt: number,
): void {
  const { stageTallies } = draft.progress;
  for (let index = 0; index < stageTallies.length; index += 1) {
    const tally = stageTallies[index]!;
    // A stage the event added starts from nothing.
    const work = doneIn(tally) - (index < stagesBefore ? doneBefore[index]! : 0);
    // One window per tally, in step with them.
    const window = (draft.stageRates[index] ??= emptyWindow());
    // A stage's clock starts when something first happens there.
    if (work > 0) addWork(window, at, work, previousAt);
    else if (window.windowStart === null && tally.started) {
      window.windowStart = at;
      window.lastAt = at;
    }
  }
}

const endings = new Set(['job.completed', 'job.failed', 'job.cancelled']);

/** Applies one event to the progress, then moves the rate windows it falls in. */
function apply(draft: JobEtaState, items: ItemWriter<ItemPosition>, event: RecordedEvent): void {
  const processedBefore = draft.progress.processed;
  const { stageTallies } = draft.progress;
  const stagesBefore = stageTallies.length;
  for (let index = 0; index < stagesBefore; index += 1) {
    doneBefore[index] = doneIn(stageTallies[index]!);
  }
  jobProgressSteps.apply(draft.progress, items, event);
  if (isCustomEvent(event) || isConditionEvent(event)) return;
  const previousAt = draft.lastAt;
  const at = Math.max(event.occurredAt.getTime(), previousAt ?? -Infinity);
  if (event.type === 'job.started' || event.type === 'job.resumed') {
    // Time spent stopped is no measure of the rate.
    draft.windowStart = at;
    draft.windowWork = 0;
    draft.lastAt = at;
    for (const window of draft.stageRates) {
      if (window.windowStart === null) continue;
      window.windowStart = at;
      window.windowWork = 0;
      window.lastAt = at;
    }
    draft.history = withSample(draft.history, at, draft.progress.processed);
    return;
  }
  if (endings.has(event.type)) {
    draft.history = withSample(draft.history, at, draft.progress.processed);
  }
  if (
    (event.type === 'item.completed' || event.type === 'item.failed') &&
    event.data.durationMs !== undefined
  ) {
    draft.durations = welford(draft.durations, event.data.durationMs);
  }
  if (draft.progress.stageTallies.length > 0) {
    advanceStages(draft, stagesBefore, at, previousAt ?? at);
  }
  const work = draft.progress.processed - processedBefore;
  if (work <= 0) return;
  if (addWork(draft, at, work, at)) {
    draft.history = withSample(draft.history, at, draft.progress.processed);
  }
}

/** One job's rate and ETA inputs; read it with `estimateEta(state, now)`. */
export const jobEta: Projection<JobEtaState> = {
  name: 'job-eta',
  version: 5,
  initial: () => ({
    progress: jobProgressSteps.initial(),
    ...emptyWindow(),
    durations: { n: 0, mean: 0, m2: 0 },
    history: { at: [], processed: [] },
    stageRates: [],
  }),
  ...draftedFold({
    draftOf,
    apply,
    settle: (draft) => jobProgressSteps.settle(draft.progress),
    core: (state) => state.progress,
  }),
};

/** How a stage's time left was estimated. */
export type EtaBasis =
  /** Nothing left to do there. */
  | 'done'
  /** Its own measured rate. */
  | 'measured'
  /** The rate of earlier jobs of the same kind in that stage. */
  | 'history'
  /** Its weight against the throughput of the stages measured so far. */
  | 'weights'
  /** No measure yet. */
  | 'unknown';

/** One stage's share of an ETA. */
export interface StageEstimate extends StageProgress {
  /** Items per second in this stage; null before there is any measure. */
  ratePerSecond: number | null;
  /** Milliseconds of work left in this stage alone; null when unknown. */
  etaMs: number | null;
  basis: EtaBasis;
}

/** An ETA as of `now`: a point and a range, or only a rate when the total is unknown. */
export interface EtaEstimate {
  processed: number;
  total: number | null;
  remaining: number | null;
  /** Items per second, smoothed; null before there is any measure. */
  ratePerSecond: number | null;
  /** Milliseconds to go; null when the total or the rate is unknown. */
  etaMs: number | null;
  range: { lowMs: number; highMs: number } | null;
  /** Expected finish (epoch ms); a finished job's end time. */
  finishAt: number | null;
  /** Each stage's counts, rate and share of the ETA; empty for a job without stages. */
  stages: StageEstimate[];
}

/** What the ledger knows beyond the job itself. */
export interface EtaContext {
  /**
   * Items per second by stage name, from earlier jobs of the same kind (`stageFigures`):
   * the estimate of a stage this job has not measured yet.
   */
  stageRates?: Readonly<Record<string, number | null>>;
}

function coefficientOfVariation(stats: { n: number; mean: number; m2: number }): number | null {
  if (stats.n < 2 || stats.mean <= 0) return null;
  return Math.sqrt(stats.m2 / (stats.n - 1)) / stats.mean;
}

/** A window's smoothed rate (items/s), or null before it has measured anything. */
function rateOf(window: RateWindow): number | null {
  if (window.emaSteps > 0) return window.ema / (1 - beta ** window.emaSteps);
  if (
    window.windowStart !== null &&
    window.lastAt !== null &&
    window.lastAt > window.windowStart &&
    window.windowWork > 0
  ) {
    return window.windowWork / ((window.lastAt - window.windowStart) / 1_000);
  }
  return null;
}

/** How far a window's rate may be off, relative: from how much its samples wobble. */
function measuredSpread(window: RateWindow): number {
  return coefficientOfVariation(window.rates) ?? 0.5;
}

/** Relative spreads of estimates that were not measured in this job: wider, as they guess more. */
const historySpread = 0.8;
const weightsSpread = 1.2;

/** Each stage's rate, basis and time left; see `estimateEta`. */
function estimateStages(
  state: JobEtaState,
  context: EtaContext,
): (StageEstimate & { spread: number })[] {
  const { progress } = state;
  const stages = stageProgress(
    progress.stageTallies,
    progress.total,
    progress.sequentialStages,
    progress.status === 'completed',
  );
  const measured = stages.map((_, index) => {
    const window = state.stageRates[index];
    const rate = window ? rateOf(window) : null;
    return rate !== null && rate > 0 ? rate : null;
  });
  // Seconds per item per unit of weight, over the stages measured so far, by items done.
  let weightedSeconds = 0;
  let weightedDone = 0;
  stages.forEach((stage, index) => {
    const rate = measured[index];
    const done = stage.completed + stage.failed + stage.skipped;
    if (rate === null || rate === undefined || done === 0) return;
    weightedSeconds += done / rate / stage.weight;
    weightedDone += done;
  });
  const secondsPerWeight = weightedDone > 0 ? weightedSeconds / weightedDone : null;
  return stages.map((stage, index) => {
    const remaining =
      stage.total === null ? null : stage.total - stage.completed - stage.failed - stage.skipped;
    let rate = measured[index] ?? null;
    let basis: EtaBasis = 'measured';
    let spread = 0;
    const window = state.stageRates[index];
    if (rate !== null && window) spread = measuredSpread(window);
    else {
      const history = context.stageRates?.[stage.name];
      if (history !== undefined && history !== null && history > 0) {
        rate = history;
        basis = 'history';
        spread = historySpread;
      } else if (secondsPerWeight !== null && secondsPerWeight > 0) {
        rate = 1 / (secondsPerWeight * stage.weight);
        basis = 'weights';
        spread = weightsSpread;
      } else {
        basis = 'unknown';
      }
    }
    if (remaining === 0) basis = 'done';
    const etaMs =
      remaining === 0 ? 0 : remaining === null || rate === null ? null : (remaining / rate) * 1_000;
    return { ...stage, ratePerSecond: measured[index] ?? null, etaMs, basis, spread };
  });
}

/**
 * The time left over every stage. A stage that has started runs beside the ones before it,
 * so it ends when they do or when its own work is done, whichever is later; one not started
 * yet follows them. Null when a stage with work left has no estimate.
 */
function pipelineMs(
  stages: readonly (StageEstimate & { spread: number })[],
  scale: (stage: { spread: number }) => number,
): number | null {
  let finish = 0;
  for (const stage of stages) {
    if (stage.basis === 'done') continue;
    if (stage.etaMs === null) return null;
    const own = stage.etaMs * scale(stage);
    finish = stage.status === 'waiting' ? finish + own : Math.max(finish, own);
  }
  return finish;
}

/**
 * Estimates the time left as of `now` (epoch ms). Never negative; low ≤ point ≤ high. A job
 * with declared stages is estimated stage by stage: a stage it has not measured yet from
 * `context.stageRates` (earlier jobs of its kind), else from its weight and the throughput
 * so far; each stage says which basis it used.
 *
 * @example
 * const { etaMs, range } = estimateEta(await ledger.project(jobId, jobEta), now);
 */
export function estimateEta(
  state: JobEtaState,
  now: number,
  context: EtaContext = {},
): EtaEstimate {
  const { progress } = state;
  const { processed, total, status } = progress;
  const remaining = total === null ? null : Math.max(0, total - processed);
  const rate = rateOf(state);
  const stages = progress.stageTallies.length > 0 ? estimateStages(state, context) : [];
  const shown = stages.map(({ spread: _, ...stage }) => stage);
  const ended = isFinished(status);
  const staged = progress.declaredStages.length > 0;
  if (ended || (!staged && remaining === 0)) {
    return {
      processed,
      total,
      remaining,
      ratePerSecond: rate,
      etaMs: 0,
      range: { lowMs: 0, highMs: 0 },
      finishAt: ended ? (progress.endedAt ?? state.lastAt) : state.lastAt,
      stages: shown,
    };
  }
  const unknown = {
    processed,
    total,
    remaining,
    ratePerSecond: rate,
    etaMs: null,
    range: null,
    finishAt: null,
    stages: shown,
  };
  // The last work anywhere: the job's count or any stage's.
  const lastAt = state.stageRates.reduce<number | null>(
    (latest, window) =>
      window.lastAt !== null && (latest === null || window.lastAt > latest)
        ? window.lastAt
        : latest,
    state.lastAt,
  );
  const since = lastAt === null ? 0 : Math.max(0, now - lastAt);
  let point: number;
  let low: number;
  let high: number;
  if (staged) {
    const pointMs = pipelineMs(stages, () => 1);
    if (pointMs === null || lastAt === null) return unknown;
    point = pointMs;
    low = pipelineMs(stages, (stage) => 1 - Math.min(0.9, Math.max(0.05, stage.spread / 2)))!;
    high = pipelineMs(stages, (stage) => 1 + Math.min(0.9, Math.max(0.05, stage.spread / 2)))!;
  } else {
    if (remaining === null || rate === null || rate <= 0 || lastAt === null) return unknown;
    point = (remaining / rate) * 1_000;
    // Spread: how much the window rates wobble, plus item durations averaged over what is left.
    const durationSpread =
      (coefficientOfVariation(state.durations) ?? 0) / Math.sqrt(Math.max(1, remaining));
    const relative = Math.min(0.9, Math.max(0.05, measuredSpread(state) / 2 + durationSpread));
    low = point * (1 - relative);
    high = point * (1 + relative);
  }
  // Work is left, so time is: past due, the estimate holds at one item's worth.
  const floor = lastItemMs(stages, rate);
  const clamp = (value: number) => (value <= 0 ? 0 : Math.max(floor, value - since));
  return {
    processed,
    total,
    remaining,
    ratePerSecond: rate,
    etaMs: clamp(point),
    range: { lowMs: clamp(low), highMs: clamp(high) },
    finishAt: lastAt + point,
    stages: shown,
  };
}

/** The time one item takes in the last stage with work left, else at the job's rate. */
function lastItemMs(stages: readonly StageEstimate[], rate: number | null): number {
  for (let index = stages.length - 1; index >= 0; index -= 1) {
    const stage = stages[index]!;
    if (stage.basis === 'done' || stage.etaMs === null) continue;
    const remaining = (stage.total ?? 0) - stage.completed - stage.failed - stage.skipped;
    if (remaining > 0) return stage.etaMs / remaining;
  }
  return rate !== null && rate > 0 ? 1_000 / rate : 1;
}
