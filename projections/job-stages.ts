import { limits } from '../schema/limits.ts';
import type { ItemStatus } from './job-items.ts';

/**
 * Items × stages: where each item stands in each stage of a job's pipeline.
 *
 * An item's outcome belongs to a stage: the one its event names, else the current one (the
 * last `stage.started`). Each stage counts its own items in flight, completed, failed and
 * skipped. Its total is the one its `stage.started` declared, else the job's total less the
 * items the pipeline stopped for in earlier stages (failed or skipped there, never seen
 * again). A stage that a later `stage.started` ended, in a job whose stages each ran once,
 * is over: its total is what it saw.
 */
export interface StageTally {
  name: string;
  /** The declared weight; 1 for a stage `job.started` did not declare. */
  weight: number;
  declared: boolean;
  /** The total its latest `stage.started` gave; null when none did. */
  declaredTotal: number | null;
  inFlight: number;
  completed: number;
  failed: number;
  skipped: number;
  /** Items whose furthest stage is this one and that failed or were skipped here. */
  stopped: number;
  /** A `stage.started` or an item event has touched it. */
  started: boolean;
  /** A later stage's `stage.started` ended it, and it has not started again. */
  ended: boolean;
  /** When something first happened in it, and its latest outcome (event time, ms). */
  firstAt: number | null;
  lastAt: number | null;
}

/** A stage's figures, derived from its tally and the job's total. */
export interface StageProgress {
  name: string;
  weight: number;
  declared: boolean;
  /** Items expected in this stage; null when unknown. */
  total: number | null;
  /** Expected and not yet started here; null when the total is unknown. */
  pending: number | null;
  inFlight: number;
  completed: number;
  failed: number;
  skipped: number;
  /** Done (completed, failed or skipped) of total, 0..1; null when the total is unknown. */
  fraction: number | null;
  status: 'waiting' | 'running' | 'done';
}

/** One tally per stage name, in pipeline order; at most `limits.stages`. */
export type StageTallies = StageTally[];

/**
 * One letter per stage, in tally order: where an item stands in each. `.` untouched, `p`
 * pending again (released), `i` in flight, `c` completed, `f` failed, `s` skipped.
 */
type StageCode = '.' | 'p' | 'i' | 'c' | 'f' | 's';

const codeOf: Record<ItemStatus, StageCode> = {
  pending: 'p',
  inFlight: 'i',
  completed: 'c',
  failed: 'f',
  skipped: 's',
};

/** A new tally for a stage. */
export function newTally(name: string, weight: number, declared: boolean): StageTally {
  return {
    name,
    weight,
    declared,
    declaredTotal: null,
    inFlight: 0,
    completed: 0,
    failed: 0,
    skipped: 0,
    stopped: 0,
    started: false,
    ended: false,
    firstAt: null,
    lastAt: null,
  };
}

/** The index of a stage's tally, adding one for a new name while under the bound; -1 past it. */
export function tallyIndex(tallies: StageTallies, name: string): number {
  const index = tallies.findIndex((tally) => tally.name === name);
  if (index >= 0) return index;
  if (tallies.length >= limits.stages) return -1;
  tallies.push(newTally(name, 1, false));
  return tallies.length - 1;
}

/** Marks a stage touched at `at`, and its latest outcome when `outcome`. */
export function touchStage(tally: StageTally, at: number, outcome: boolean): void {
  tally.started = true;
  tally.firstAt ??= at;
  if (outcome) tally.lastAt = Math.max(at, tally.lastAt ?? at);
}

/** Done in a stage: completed, failed or skipped there. */
export function doneIn(tally: StageTally): number {
  return tally.completed + tally.failed + tally.skipped;
}

function countCode(tally: StageTally, code: string, delta: number): void {
  if (code === 'i') tally.inFlight += delta;
  else if (code === 'c') tally.completed += delta;
  else if (code === 'f') tally.failed += delta;
  else if (code === 's') tally.skipped += delta;
}

/** The stage index where the pipeline stopped for an item, or -1 when it goes on. */
function stoppedAt(codes: string): number {
  for (let index = codes.length - 1; index >= 0; index -= 1) {
    const code = codes[index];
    if (code === '.') continue;
    return code === 'f' || code === 's' ? index : -1;
  }
  return -1;
}

/**
 * Moves an item within one stage as an event of `status` does, and returns its new codes.
 * An item seen in a later stage has left the earlier ones: in flight there becomes completed.
 * `releasedOnly`: the event only sends items in flight or failed back to pending.
 */
export function moveInStage(
  tallies: StageTallies,
  codes: string,
  stage: number,
  status: ItemStatus,
): string {
  const before = codes.padEnd(stage + 1, '.');
  const next = [...before];
  for (let index = 0; index < stage; index += 1) if (next[index] === 'i') next[index] = 'c';
  const current = next[stage]!;
  if (status === 'pending' && current !== 'i' && current !== 'f') return codes;
  next[stage] = codeOf[status];
  const after = next.join('');
  if (after === before) return codes;
  for (let index = 0; index <= stage; index += 1) {
    if (before[index] === after[index]) continue;
    countCode(tallies[index]!, before[index]!, -1);
    countCode(tallies[index]!, after[index]!, 1);
  }
  const stoppedBefore = stoppedAt(before);
  const stoppedAfter = stoppedAt(after);
  if (stoppedBefore !== stoppedAfter) {
    if (stoppedBefore >= 0) tallies[stoppedBefore]!.stopped -= 1;
    if (stoppedAfter >= 0) tallies[stoppedAfter]!.stopped += 1;
  }
  return after;
}

/** The stage an item's released event applies to: the furthest one it reached. */
export function furthestStage(codes: string): number {
  for (let index = codes.length - 1; index >= 0; index -= 1) if (codes[index] !== '.') return index;
  return -1;
}

/**
 * Each stage's total, pending and fraction. `jobTotal` is the job's best known item count;
 * `sequential` says every stage ran at most once, in turn, so an ended stage is over.
 *
 * @example
 * stageProgress(state.stageTallies, state.total, true).map((stage) => stage.pending);
 */
export function stageProgress(
  tallies: readonly StageTally[],
  jobTotal: number | null,
  sequential: boolean,
): StageProgress[] {
  let stoppedBefore = 0;
  return tallies.map((tally) => {
    const seen = tally.inFlight + doneIn(tally);
    let total: number | null;
    if (tally.declaredTotal !== null) total = Math.max(tally.declaredTotal, seen);
    else if (tally.ended && sequential) total = seen;
    else if (jobTotal !== null) total = Math.max(jobTotal - stoppedBefore, seen);
    else total = null;
    stoppedBefore += tally.stopped;
    const done = doneIn(tally);
    const fraction = total === null ? null : total === 0 ? 1 : done / total;
    return {
      name: tally.name,
      weight: tally.weight,
      declared: tally.declared,
      total,
      pending: total === null ? null : total - seen,
      inFlight: tally.inFlight,
      completed: tally.completed,
      failed: tally.failed,
      skipped: tally.skipped,
      fraction,
      status:
        total !== null && seen === total && tally.inFlight === 0 && (total > 0 || tally.started)
          ? 'done'
          : tally.started
            ? 'running'
            : 'waiting',
    };
  });
}

/** An item's status and stage codes, kept as one value so one item table holds both. */
export type ItemPosition = ItemStatus | `${ItemStatus} ${string}`;

/** The job-wide status of an item position. */
export function positionStatus(position: ItemPosition): ItemStatus {
  const space = position.indexOf(' ');
  return (space < 0 ? position : position.slice(0, space)) as ItemStatus;
}

/** The stage codes of an item position ('' when it has none). */
export function positionCodes(position: ItemPosition | undefined): string {
  if (position === undefined) return '';
  const space = position.indexOf(' ');
  return space < 0 ? '' : position.slice(space + 1);
}

/** A position from a status and stage codes. */
export function positionOf(status: ItemStatus, codes: string): ItemPosition {
  return codes === '' ? status : `${status} ${codes}`;
}
