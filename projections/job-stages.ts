import { limits } from '../schema/limits.ts';
import type { ItemStatus } from './job-items.ts';

/**
 * Items × stages: where each item stands in each stage of a job's pipeline.
 *
 * An item's outcome belongs to a stage: the one its event names, else the current one (the
 * last `stage.started`). Each stage counts its own items in flight, completed, failed and
 * skipped. A stage that a later `stage.started` ended, in a job whose stages each ran once,
 * is over: its total is what it saw. Otherwise its total is the one its `stage.started`
 * declared, else the job's total less the items the pipeline stopped for in earlier stages
 * (failed or skipped there, never seen again).
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
 * One letter per status, and per stage in tally order: where an item stands in each. `.`
 * untouched, `p` pending (again, once released), `i` in flight, `c` completed, `f` failed,
 * `s` skipped.
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

/** A copy of a tally, built field by field so every tally keeps one shape (fast to read). */
export function copyTally(tally: StageTally): StageTally {
  return {
    name: tally.name,
    weight: tally.weight,
    declared: tally.declared,
    declaredTotal: tally.declaredTotal,
    inFlight: tally.inFlight,
    completed: tally.completed,
    failed: tally.failed,
    skipped: tally.skipped,
    stopped: tally.stopped,
    started: tally.started,
    ended: tally.ended,
    firstAt: tally.firstAt,
    lastAt: tally.lastAt,
  };
}

/** The index of a stage's tally, adding one for a new name while under the bound; -1 past it. */
export function tallyIndex(tallies: StageTallies, name: string): number {
  for (let index = 0; index < tallies.length; index += 1) {
    if (tallies[index]!.name === name) return index;
  }
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
function stoppedAt(position: ItemPosition): number {
  for (let index = position.length - 1; index >= 1; index -= 1) {
    const code = position[index];
    if (code === '.') continue;
    return code === 'f' || code === 's' ? index - 1 : -1;
  }
  return -1;
}

/** The furthest stage an item reached, or -1. */
export function furthestStage(position: ItemPosition | undefined): number {
  if (position === undefined) return -1;
  for (let index = position.length - 1; index >= 1; index -= 1) {
    if (position[index] !== '.') return index - 1;
  }
  return -1;
}

/**
 * An item's position after an event: job-wide `status`, and in stage `stage` (an index, or
 * -1 for none) the move to `stageStatus`, counted in the tallies. An item seen in a later
 * stage has left the earlier ones: in flight there becomes completed. Pending (a release)
 * only sends an item in flight or failed back.
 */
export function movePosition(
  tallies: StageTallies,
  position: ItemPosition | undefined,
  status: ItemStatus,
  stage: number,
  stageStatus: ItemStatus = status,
): ItemPosition {
  // Written to allocate little: this runs for every item event of a staged job.
  const statusCode = codeOf[status];
  const length = position === undefined ? 0 : position.length;
  const at = stage + 1;
  const current = stage >= 0 && at < length ? position![at]! : '.';
  const moves = stage >= 0 && (stageStatus !== 'pending' || current === 'i' || current === 'f');
  if (!moves) {
    if (length <= 1) return statusCode;
    return position![0] === statusCode ? position! : statusCode + position!.slice(1);
  }
  const code = codeOf[stageStatus];
  let prefix = length > at ? position!.slice(1, at) : (position?.slice(1) ?? '').padEnd(stage, '.');
  // Only an item that moves on leaves the earlier stages; a release moves nothing on.
  if (stageStatus !== 'pending' && prefix.includes('i')) {
    for (let index = 0; index < stage; index += 1) {
      if (prefix[index] !== 'i') continue;
      tallies[index]!.inFlight -= 1;
      tallies[index]!.completed += 1;
    }
    prefix = prefix.replaceAll('i', 'c');
  } else if (current === code) {
    return position![0] === statusCode ? position! : statusCode + position!.slice(1);
  }
  const tally = tallies[stage]!;
  countCode(tally, current, -1);
  countCode(tally, code, 1);
  const after = statusCode + prefix + code + (length > at + 1 ? position!.slice(at + 1) : '');
  const stoppedBefore = position === undefined ? -1 : stoppedAt(position);
  const stoppedAfter = stoppedAt(after);
  if (stoppedBefore !== stoppedAfter) {
    if (stoppedBefore >= 0) tallies[stoppedBefore]!.stopped -= 1;
    if (stoppedAfter >= 0) tallies[stoppedAfter]!.stopped += 1;
  }
  return after;
}

/**
 * Each stage's total, pending and fraction. `jobTotal` is the job's best known item count;
 * `sequential` says every stage ran at most once, in turn, so an ended stage is over;
 * `completed`, that the job has completed, so every stage holds what it saw.
 *
 * @example
 * stageProgress(state.stageTallies, state.total, true).map((stage) => stage.pending);
 */
export function stageProgress(
  tallies: readonly StageTally[],
  jobTotal: number | null,
  sequential: boolean,
  completed = false,
): StageProgress[] {
  let stoppedBefore = 0;
  return tallies.map((tally) => {
    const seen = tally.inFlight + doneIn(tally);
    let total: number | null;
    if (completed || (tally.ended && sequential)) total = seen;
    else if (tally.declaredTotal !== null) total = Math.max(tally.declaredTotal, seen);
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

/**
 * An item's job-wide status and its stage codes in one short string, so one item table
 * holds both: the status's letter (`p`, `i`, `c`, `f`, `s`), then one letter per stage.
 */
export type ItemPosition = string;

const statusOfCode: Record<string, ItemStatus> = {
  p: 'pending',
  i: 'inFlight',
  c: 'completed',
  f: 'failed',
  s: 'skipped',
};

/** The job-wide status of an item position. */
export function positionStatus(position: ItemPosition): ItemStatus {
  return statusOfCode[position[0]!]!;
}
