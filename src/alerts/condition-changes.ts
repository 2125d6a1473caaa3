import type { ConditionName, EventData } from '../../schema/events.ts';
import { conditionFields } from '../../projections/job-conditions.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import type { JobProgressState } from '../../projections/job-progress.ts';
import { isFinished } from '../../projections/job-status.ts';
import { limits } from '../../schema/limits.ts';

// What the log records of a job's conditions: the difference between the conditions judged
// now and those it records as raised (docs/architecture.md, "Conditions").

/** A record of the log to append: a condition newly seen, or one no longer holding. */
export type ConditionChange =
  | { type: 'condition.raised'; data: EventData<'condition.raised'> }
  | { type: 'condition.cleared'; data: EventData<'condition.cleared'> };

/**
 * What the log should record, given the conditions judged now and those it records as
 * raised: a `condition.raised` for each that holds and is not raised, a `condition.cleared`
 * for each raised that no longer holds. A finished job's raised conditions are left as they
 * are: its ending says enough.
 *
 * @example
 * for (const change of conditionChanges(progress, jobConditions(progress, eta, now), now)) …
 */
export function conditionChanges(
  facts: Pick<JobProgressState, 'status'> & Partial<Pick<JobProgressState, 'raisedConditions'>>,
  conditions: JobConditions,
  now: number,
): ConditionChange[] {
  if (isFinished(facts.status)) return [];
  const raised = facts.raisedConditions ?? [];
  const changes: ConditionChange[] = [];
  for (const [name, field] of Object.entries(conditionFields) as [
    ConditionName,
    keyof JobConditions,
  ][]) {
    const holding = conditions[field];
    const record = raised.find((entry) => entry.condition === name);
    if (holding && !record) {
      changes.push({ type: 'condition.raised', data: raisedData(name, conditions) });
    } else if (!holding && record) {
      changes.push({
        type: 'condition.cleared',
        data: { condition: name, heldMs: Math.max(0, Math.round(now - record.since)) },
      });
    }
  }
  return changes;
}

/** The detail a `condition.raised` carries for one condition. */
function raisedData(
  condition: ConditionName,
  conditions: JobConditions,
): EventData<'condition.raised'> {
  // An ETA can reach past the year 9999 (a huge total at a slow rate): the latest storable time.
  const iso = (ms: number) =>
    new Date(Math.min(Math.max(ms, limits.earliestTimeMs), limits.latestTimeMs)).toISOString();
  const { stalled, atRisk, late, failureRate } = conditions;
  switch (condition) {
    case 'stalled':
      return {
        condition,
        thresholdMs: stalled!.thresholdMs,
        basis: stalled!.basis,
        lastEventAt: iso(stalled!.lastEventAt),
        silentMs: Math.round(stalled!.silentMs),
      };
    case 'at_risk':
      return { condition, deadline: iso(atRisk!.deadline), expectedBy: iso(atRisk!.expectedBy) };
    case 'late':
      return { condition, deadline: iso(late!.deadline), overdueMs: Math.round(late!.overdueMs) };
    case 'failure_rate':
      return {
        condition,
        rate: failureRate!.rate,
        threshold: failureRate!.threshold,
        outcomes: failureRate!.outcomes,
      };
  }
}
