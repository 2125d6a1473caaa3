import { isCustomEvent } from '../schema/recorded-event.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { draftedFold } from './drafted-fold.ts';
import type { ItemWriter } from './item-table.ts';
import type { ItemStatus } from './job-items.ts';
import { jobProgressSteps } from './job-progress.ts';
import type { JobProgressState } from './job-progress.ts';
import type { Projection } from './projection.ts';

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

/** Running figures behind one job's ETA. */
export interface JobEtaState {
  progress: JobProgressState;
  windowStart: number | null;
  windowWork: number;
  lastAt: number | null;
  /** Exponential moving average of the rate (items/s), before bias correction. */
  ema: number;
  emaSteps: number;
  /** Welford sums over window rates and over item durations, for the range. */
  rates: { n: number; mean: number; m2: number };
  durations: { n: number; mean: number; m2: number };
  history: ThroughputHistory;
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
  return { ...state, progress: jobProgressSteps.draftOf(state.progress) };
}

const endings = new Set(['job.completed', 'job.failed', 'job.cancelled']);

/** Applies one event to the progress, then moves the rate window it falls in. */
function apply(draft: JobEtaState, items: ItemWriter<ItemStatus>, event: RecordedEvent): void {
  const processedBefore = draft.progress.processed;
  jobProgressSteps.apply(draft.progress, items, event);
  if (isCustomEvent(event)) return;
  const at = Math.max(event.occurredAt.getTime(), draft.lastAt ?? -Infinity);
  if (event.type === 'job.started' || event.type === 'job.resumed') {
    // Time spent stopped is no measure of the rate.
    draft.windowStart = at;
    draft.windowWork = 0;
    draft.lastAt = at;
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
  const work = draft.progress.processed - processedBefore;
  if (work <= 0) return;
  const windowStart = draft.windowStart ?? at;
  draft.windowWork += work;
  draft.lastAt = at;
  if (at - windowStart < windowMs) {
    draft.windowStart = windowStart;
    return;
  }
  const rate = draft.windowWork / ((at - windowStart) / 1_000);
  draft.windowStart = at;
  draft.windowWork = 0;
  draft.ema = beta * draft.ema + (1 - beta) * rate;
  draft.emaSteps += 1;
  draft.rates = welford(draft.rates, rate);
  draft.history = withSample(draft.history, at, draft.progress.processed);
}

/** One job's rate and ETA inputs; read it with `estimateEta(state, now)`. */
export const jobEta: Projection<JobEtaState> = {
  name: 'job-eta',
  version: 2,
  initial: () => ({
    progress: jobProgressSteps.initial(),
    windowStart: null,
    windowWork: 0,
    lastAt: null,
    ema: 0,
    emaSteps: 0,
    rates: { n: 0, mean: 0, m2: 0 },
    durations: { n: 0, mean: 0, m2: 0 },
    history: { at: [], processed: [] },
  }),
  ...draftedFold({
    draftOf,
    apply,
    settle: (draft) => jobProgressSteps.settle(draft.progress),
    core: (state) => state.progress,
  }),
};

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
  /** Expected finish (epoch ms). */
  finishAt: number | null;
}

function coefficientOfVariation(stats: { n: number; mean: number; m2: number }): number | null {
  if (stats.n < 2 || stats.mean <= 0) return null;
  return Math.sqrt(stats.m2 / (stats.n - 1)) / stats.mean;
}

/**
 * Estimates the time left as of `now` (epoch ms). Never negative; low ≤ point ≤ high.
 *
 * @example
 * const { etaMs, range } = estimateEta(await ledger.project(jobId, jobEta), now);
 */
export function estimateEta(state: JobEtaState, now: number): EtaEstimate {
  const { processed, total, status } = state.progress;
  const remaining = total === null ? null : Math.max(0, total - processed);
  let rate: number | null = null;
  if (state.emaSteps > 0) rate = state.ema / (1 - beta ** state.emaSteps);
  else if (
    state.windowStart !== null &&
    state.lastAt !== null &&
    state.lastAt > state.windowStart &&
    state.windowWork > 0
  ) {
    rate = state.windowWork / ((state.lastAt - state.windowStart) / 1_000);
  }
  const finished =
    status === 'completed' || status === 'failed' || status === 'cancelled' || remaining === 0;
  if (finished) {
    return {
      processed,
      total,
      remaining,
      ratePerSecond: rate,
      etaMs: 0,
      range: { lowMs: 0, highMs: 0 },
      finishAt: state.lastAt,
    };
  }
  if (remaining === null || rate === null || rate <= 0 || state.lastAt === null) {
    return {
      processed,
      total,
      remaining,
      ratePerSecond: rate,
      etaMs: null,
      range: null,
      finishAt: null,
    };
  }
  const fromLast = (remaining / rate) * 1_000;
  const since = Math.max(0, now - state.lastAt);
  // Spread: how much the window rates wobble, plus item durations averaged over what is left.
  const rateSpread = coefficientOfVariation(state.rates) ?? 0.5;
  const durationSpread =
    (coefficientOfVariation(state.durations) ?? 0) / Math.sqrt(Math.max(1, remaining));
  const relative = Math.min(0.9, Math.max(0.05, rateSpread / 2 + durationSpread));
  const clamp = (value: number) => Math.max(0, value - since);
  return {
    processed,
    total,
    remaining,
    ratePerSecond: rate,
    etaMs: clamp(fromLast),
    range: { lowMs: clamp(fromLast * (1 - relative)), highMs: clamp(fromLast * (1 + relative)) },
    finishAt: state.lastAt + fromLast,
  };
}
