import type { RecordedEvent } from '../schema/recorded-event.ts';
import { itemWriter, mapItemWriter } from './item-table.ts';
import type { ItemTable, ItemWriter } from './item-table.ts';
import type { Projection } from './projection.ts';

/** A one-job state that remembers the last version applied and tracks items. */
interface VersionedItems<V> {
  version: number;
  items: ItemTable<V>;
}

/** A projection written once, as changes to a draft in place. */
export interface DraftedFold<S extends VersionedItems<V>, V> {
  /** A copy whose nested parts that `apply` changes in place are its own. */
  draftOf(state: S): S;
  /** Applies one event to the draft and its items; its version is already set. */
  apply(draft: S, items: ItemWriter<V>, event: RecordedEvent): void;
  /** Fields derived from the current state alone, settled before a state is handed out. */
  settle?(draft: S): void;
}

/**
 * `evolve` and `accumulate` from one in-place definition: `evolve` runs it on a fresh
 * draft with copy-on-write items, the accumulator on a draft of its own with items in a
 * `Map`, settling derived fields once per result. Redelivered events are ignored.
 *
 * @example
 * export const jobThing: Projection<ThingState> = { name, version: 1, initial, ...draftedFold({ draftOf, apply }) };
 */
export function draftedFold<S extends VersionedItems<V>, V>(
  spec: DraftedFold<S, V>,
): Required<Pick<Projection<S>, 'evolve' | 'accumulate'>> {
  const step = (draft: S, items: ItemWriter<V>, event: RecordedEvent) => {
    draft.version = event.version;
    spec.apply(draft, items, event);
  };
  return {
    evolve(state, event) {
      if (event.version <= state.version) return state;
      const draft = spec.draftOf(state);
      const items = itemWriter(state.items);
      step(draft, items, event);
      spec.settle?.(draft);
      draft.items = items.table();
      return draft;
    },
    accumulate(state) {
      const draft = spec.draftOf(state);
      const items = mapItemWriter(state.items);
      return {
        add(event) {
          if (event.version > draft.version) step(draft, items, event);
        },
        result() {
          spec.settle?.(draft);
          return { ...spec.draftOf(draft), items: items.table() };
        },
      };
    },
  };
}
