import type { RecordedEvent } from '../schema/recorded-event.ts';
import { bucketOf, getItem, itemBucketCount } from '../projections/item-table.ts';
import { setOwn } from '../projections/own.ts';
import type { ItemTable } from '../projections/item-table.ts';
import { jobEta } from '../projections/job-eta.ts';
import type { JobEtaState } from '../projections/job-eta.ts';
import { eventItemIds } from '../projections/job-items.ts';
import type { Projection } from '../projections/projection.ts';

/** The part of a stored state that holds everything but its item buckets. */
export const mainPart = '';

/** A state as stored: its parts by name. */
export type StateParts = ReadonlyMap<string, unknown>;

/**
 * A per-job projection kept in `projection_states`, one state per job, split into parts
 * so that a batch rewrites only what it changed.
 */
export interface PersistedProjection<S> {
  /** The name in the tables and in `headway projections`. */
  readonly name: string;
  /** The per-job fold; its `version` marks the code, and a change rebuilds the tables. */
  readonly projection: Projection<S>;
  /**
   * What folding `events` into `state` changed, as parts to write: `mainPart` whole, and
   * of each touched item bucket only the touched items, which the store merges into the
   * bucket (items are never removed), so a batch writes what it changed, not whole buckets.
   */
  changedParts(state: S, events: readonly RecordedEvent[]): Map<string, unknown>;
  /** The state back from parts; missing item buckets read as empty. */
  join(parts: StateParts): S;
  /**
   * `state` with more of its items added: each given part holds some or all of one
   * bucket's items, none of them in `state` yet. For states loaded in pieces.
   */
  withItems(state: S, parts: StateParts): S;
  /** The parts besides `mainPart` that folding this event reads or changes. */
  partsFor(event: RecordedEvent): string[];
  /** The items folding this event reads or changes. */
  itemsFor(event: RecordedEvent): string[];
  /** The parts besides `mainPart` that hold these items. */
  partsOfItems(itemIds: readonly string[]): string[];
}

const bucketPart = (index: number) => `items.${index}`;

/** The parts of the item buckets that hold these items. */
export function itemParts(itemIds: readonly string[]): string[] {
  if (itemIds.length === 1) return [bucketPart(bucketOf(itemIds[0]!))];
  return [...new Set(itemIds.map((id) => bucketPart(bucketOf(id))))];
}

function joinItems<V>(parts: StateParts, base?: ItemTable<V>): ItemTable<V> {
  return Array.from({ length: itemBucketCount }, (_, index) => {
    const part = parts.get(bucketPart(index)) as Record<string, V> | undefined;
    const known = base?.[index];
    if (!part) return known ?? {};
    return known ? { ...known, ...part } : part;
  });
}

/**
 * Every job's progress and ETA inputs, by job id: what `status`, the job lists, the
 * project views and stage metrics read.
 */
export const jobsProjection: PersistedProjection<JobEtaState> = {
  name: 'jobs',
  projection: jobEta,
  changedParts(state, events) {
    const parts = new Map<string, unknown>();
    parts.set(mainPart, { ...state, progress: { ...state.progress, items: [] } });
    const { items } = state.progress;
    for (const event of events) {
      for (const itemId of eventItemIds(event)) {
        const bucket = bucketOf(itemId);
        const value = getItem(items, itemId);
        if (value === undefined) continue;
        let part = parts.get(bucketPart(bucket)) as Record<string, unknown> | undefined;
        if (!part) parts.set(bucketPart(bucket), (part = {}));
        setOwn(part, itemId, value);
      }
    }
    return parts;
  },
  join(parts) {
    const main = parts.get(mainPart) as JobEtaState | undefined;
    if (!main) return jobEta.initial();
    return { ...main, progress: { ...main.progress, items: joinItems(parts) } };
  },
  withItems(state, parts) {
    return {
      ...state,
      progress: { ...state.progress, items: joinItems(parts, state.progress.items) },
    };
  },
  partsFor: (event) => itemParts(eventItemIds(event)),
  itemsFor: eventItemIds,
  partsOfItems: itemParts,
};

/** The persisted projections a ledger keeps, by name. */
export const persistedProjections: ReadonlyMap<string, PersistedProjection<unknown>> = new Map([
  [jobsProjection.name, jobsProjection],
]);
