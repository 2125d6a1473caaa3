import type { RecordedEvent } from '../schema/recorded-event.ts';

/**
 * A fold in progress that may change its own private copy of the state in place: the fast
 * path for folding many events. It must end in the state that `evolve` would reach.
 */
export interface Accumulator<S> {
  /** Applies one event. */
  add(event: RecordedEvent): void;
  /** The state so far, as a value the accumulator will not touch again; adding may go on. */
  result(): S;
}

/**
 * A pure fold of recorded events into a state (docs/architecture.md, "Projections"). States are plain JSON data
 * (objects, arrays, strings, numbers, booleans, null), so they can be saved and resumed.
 *
 * @example
 * const count: Projection<number> = { name: 'count', version: 1, initial: () => 0, evolve: (n) => n + 1 };
 */
export interface Projection<S> {
  /** Unique, stable name; persisted projections are stored under it. */
  readonly name: string;
  /** Bumped whenever `evolve` changes meaning, so persisted states get rebuilt. */
  readonly version: number;
  initial(): S;
  evolve(state: S, event: RecordedEvent): S;
  /**
   * Optional fast path for bulk folds (see `Accumulator`). It must leave `state` as it was,
   * working on its own copy; callers must not change what its `result()` returns.
   */
  accumulate?(state: S): Accumulator<S>;
}

/**
 * An accumulator for a projection: its own fast path when it has one, else `evolve`
 * step by step.
 *
 * @example
 * const acc = accumulatorFor(jobProgress);
 * for (const event of events) acc.add(event);
 * const progress = acc.result();
 */
export function accumulatorFor<S>(
  projection: Projection<S>,
  state: S = projection.initial(),
): Accumulator<S> {
  if (projection.accumulate) return projection.accumulate(state);
  let current = state;
  return {
    add(event) {
      current = projection.evolve(current, event);
    },
    result: () => current,
  };
}

/** Folds events into a state, starting from `state` (default: the projection's initial). */
export function fold<S>(
  projection: Projection<S>,
  events: Iterable<RecordedEvent>,
  state: S = projection.initial(),
): S {
  const accumulator = accumulatorFor(projection, state);
  if (Array.isArray(events)) {
    // Indexed: a long fold runs in on-stack-replaced code, where for-of over an array can
    // allocate an iterator result per event.
    const list = events as readonly RecordedEvent[];
    for (let index = 0; index < list.length; index += 1) accumulator.add(list[index]!);
  } else {
    for (const event of events) accumulator.add(event);
  }
  return accumulator.result();
}
