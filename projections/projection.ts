import type { RecordedEvent } from '../schema/recorded-event.ts';

/**
 * A pure fold of recorded events into a state (DESIGN §4). States are plain JSON data
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
}

/** Folds events into a state, starting from `state` (default: the projection's initial). */
export function fold<S>(
  projection: Projection<S>,
  events: Iterable<RecordedEvent>,
  state: S = projection.initial(),
): S {
  let current = state;
  for (const event of events) current = projection.evolve(current, event);
  return current;
}
