import type { RecordedEvent } from '../schema/recorded-event.ts';
import { isEmptyTable, itemWriter, numberedItemWriter } from './item-table.ts';
import type { ItemTable, ItemWriter } from './item-table.ts';
import type { Projection } from './projection.ts';

/** The part of a one-job state that remembers the last version applied and tracks items. */
export interface VersionedItems<V> {
  version: number;
  items: ItemTable<V>;
}

/** A projection written once, as changes to a draft in place. */
export interface DraftedFold<S, V> {
  /** A copy whose nested parts that `apply` changes in place are its own. */
  draftOf(state: S): S;
  /** Applies one event to the draft and its items; its version is already set. */
  apply(draft: S, items: ItemWriter<V>, event: RecordedEvent): void;
  /** Fields derived from the current state alone, settled before a state is handed out. */
  settle?(draft: S): void;
  /** Where the state keeps its version and items; default: the state itself. */
  core?(state: S): VersionedItems<V>;
}

/**
 * `evolve` and `accumulate` from one in-place definition: `evolve` runs it on a fresh
 * draft with copy-on-write items, the accumulator on a draft of its own, settling derived
 * fields once per result. Redelivered events are ignored.
 *
 * @example
 * export const jobThing: Projection<ThingState> = { name, version: 1, initial, ...draftedFold({ draftOf, apply }) };
 */
export function draftedFold<S, V>(
  spec: DraftedFold<S, V>,
): Required<Pick<Projection<S>, 'evolve' | 'accumulate'>> {
  const core = (state: S): VersionedItems<V> =>
    spec.core ? spec.core(state) : (state as unknown as VersionedItems<V>);
  const step = (draft: S, items: ItemWriter<V>, event: RecordedEvent) => {
    core(draft).version = event.version;
    spec.apply(draft, items, event);
  };
  return {
    evolve(state, event) {
      if (event.version <= core(state).version) return state;
      const draft = spec.draftOf(state);
      const items = itemWriter(core(state).items);
      step(draft, items, event);
      spec.settle?.(draft);
      core(draft).items = items.table();
      return draft;
    },
    accumulate(state) {
      const draft = spec.draftOf(state);
      // A fold from nothing numbers its items; one that goes on from a stored state
      // copies only the buckets it touches, once each.
      const source = core(state).items;
      const items = isEmptyTable(source) ? numberedItemWriter(source) : itemWriter(source);
      return {
        add(event) {
          if (event.version > core(draft).version) step(draft, items, event);
        },
        result() {
          spec.settle?.(draft);
          const result = spec.draftOf(draft);
          core(result).items = items.table();
          return result;
        },
      };
    },
  };
}
