import type { EtaEstimate } from './job-eta.ts';
import type { ConditionName } from '../schema/events.ts';
import { recentFailureRate } from './job-progress.ts';
import type { JobProgressState } from './job-progress.ts';
import { isFinished } from './job-status.ts';

// The conditions a job can be in beyond its status: stalled, at risk of missing its
// deadline, late, failing too often. Each is a pure function of the job's state and `now`, so projections stay
// pure and a condition clears by itself once the facts change (docs/architecture.md,
// "Conditions").

/** How conditions are judged where a job says nothing itself. */
export interface ConditionSettings {
  /** The stall threshold of a job that sets none and has too little history (ms). */
  defaultStallAfterMs: number;
  /** A learned threshold is this many of the job's recent gaps between appends. */
  learnedGapMultiple: number;
  /** A learned threshold is never below this (ms): steady fast jobs still get slack. */
  stallFloorMs: number;
  /** Gaps between appends a job must have shown before its threshold is learned. */
  gapsToLearn: number;
  /** The failure rate threshold of a job that sets none (0..1); null for none. */
  defaultFailureRateAbove: number | null;
  /** Outcomes a job must have before its failure rate counts. */
  failureRateMinOutcomes: number;
}

/**
 * The defaults: stalled after 10 minutes, or 10 recent gaps once 20 are seen, never below 1
 * minute; failing when over half the recent outcomes fail, once there are 20.
 */
export const defaultConditionSettings: ConditionSettings = {
  defaultStallAfterMs: 10 * 60_000,
  learnedGapMultiple: 10,
  stallFloorMs: 60_000,
  gapsToLearn: 20,
  defaultFailureRateAbove: 0.5,
  failureRateMinOutcomes: 20,
};

/** Where a stall threshold came from. */
export type StallBasis = 'job' | 'learned' | 'default';

/** A job's stall threshold and where it came from. */
export interface StallThreshold {
  thresholdMs: number;
  basis: StallBasis;
}

/** A running job that has been silent past its threshold. */
export interface StalledCondition extends StallThreshold {
  /** When its latest event occurred (epoch ms). */
  lastEventAt: number;
  /** How long it has been silent, as of `now`. */
  silentMs: number;
}

/** A job whose expected finish, at the slow end of its ETA range, is past its deadline. */
export interface AtRiskCondition {
  deadline: number;
  /** The slow end of the ETA range, as a time (epoch ms). */
  expectedBy: number;
}

/** An unfinished job whose deadline has passed. */
export interface LateCondition {
  deadline: number;
  overdueMs: number;
}

/** A job whose recent outcomes fail more often than its threshold allows. */
export interface FailureRateCondition {
  /** The recent failure rate (0..1), older outcomes weighing less. */
  rate: number;
  threshold: number;
  /** Where the threshold came from: the job's `failureRateAbove`, or the default. */
  basis: 'job' | 'default';
  /** How many outcomes the job has had. */
  outcomes: number;
}

/** The conditions of one job as of `now`; null where a condition does not hold. */
export interface JobConditions {
  stalled: StalledCondition | null;
  atRisk: AtRiskCondition | null;
  late: LateCondition | null;
  failureRate: FailureRateCondition | null;
}

/** Which `JobConditions` field holds each condition the log records. */
export const conditionFields = {
  stalled: 'stalled',
  at_risk: 'atRisk',
  late: 'late',
  failure_rate: 'failureRate',
} as const satisfies Record<ConditionName, keyof JobConditions>;

/** No condition holds. */
export const noConditions: JobConditions = {
  stalled: null,
  atRisk: null,
  late: null,
  failureRate: null,
};

/** The fields of a job's progress the conditions read. */
export type ConditionFacts = Pick<
  JobProgressState,
  'status' | 'stallAfterMs' | 'deadline' | 'lastEventAt' | 'recentGapMs' | 'gaps'
> &
  Partial<Pick<JobProgressState, 'failureRateAbove' | 'recentOutcomes'>>;

/**
 * The threshold after which a silent job counts as stalled: its own (`stallAfterMs` on
 * `job.started`), else a multiple of its recent gap between appends once it has shown
 * enough of them (never below the floor), else the default.
 *
 * @example
 * stallThreshold(progress).basis; // 'job' | 'learned' | 'default'
 */
export function stallThreshold(
  facts: ConditionFacts,
  settings: ConditionSettings = defaultConditionSettings,
): StallThreshold {
  if (facts.stallAfterMs !== null && facts.stallAfterMs !== undefined) {
    return { thresholdMs: facts.stallAfterMs, basis: 'job' };
  }
  // Old stored states lack the gap fields: they count as no history.
  const gaps = facts.gaps ?? 0;
  if (
    gaps >= settings.gapsToLearn &&
    facts.recentGapMs !== null &&
    facts.recentGapMs !== undefined
  ) {
    const learned = Math.round(facts.recentGapMs * settings.learnedGapMultiple);
    return { thresholdMs: Math.max(settings.stallFloorMs, learned), basis: 'learned' };
  }
  return { thresholdMs: settings.defaultStallAfterMs, basis: 'default' };
}

/**
 * A job's conditions as of `now`. Only a running job stalls (a paused one is waiting on
 * purpose); only an unfinished job is at risk or late, and a late job is no longer "at risk".
 *
 * @example
 * const { stalled, atRisk, late } = jobConditions(view.progress, view.eta, now);
 */
export function jobConditions(
  facts: ConditionFacts,
  eta: Pick<EtaEstimate, 'range'> | null,
  now: number,
  settings: ConditionSettings = defaultConditionSettings,
): JobConditions {
  const conditions: JobConditions = { ...noConditions };
  if (isFinished(facts.status)) return conditions;
  // Old stored states lack it: they cannot be judged stalled until their next event.
  const lastEventAt = facts.lastEventAt ?? null;
  if (facts.status === 'running' && lastEventAt !== null) {
    const threshold = stallThreshold(facts, settings);
    const silentMs = now - lastEventAt;
    if (silentMs > threshold.thresholdMs) {
      conditions.stalled = { ...threshold, lastEventAt, silentMs };
    }
  }
  const deadline = facts.deadline ?? null;
  if (deadline !== null) {
    if (now > deadline) {
      conditions.late = { deadline, overdueMs: now - deadline };
    } else if (eta?.range && now + eta.range.highMs > deadline) {
      conditions.atRisk = { deadline, expectedBy: now + eta.range.highMs };
    }
  }
  conditions.failureRate = failingTooOften(facts, settings);
  return conditions;
}

/** The failure rate condition, when the recent outcomes are enough and fail too often. */
function failingTooOften(
  facts: ConditionFacts,
  settings: ConditionSettings,
): FailureRateCondition | null {
  const own = facts.failureRateAbove ?? null;
  const threshold = own ?? settings.defaultFailureRateAbove;
  const outcomes = facts.recentOutcomes?.count ?? 0;
  if (threshold === null || outcomes < settings.failureRateMinOutcomes) return null;
  const rate = recentFailureRate({ recentOutcomes: facts.recentOutcomes! });
  if (rate === null || rate <= threshold) return null;
  return { rate, threshold, basis: own === null ? 'default' : 'job', outcomes };
}
