import type { RecordedEvent } from '../schema/recorded-event.ts';
import { bucketOf, itemBucketCount } from '../projections/item-table.ts';
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
  /** The state as parts; `mainPart` always among them. */
  split(state: S): Map<string, unknown>;
  /** The state back from parts; missing item buckets read as empty. */
  join(parts: StateParts): S;
  /** `state` with the given parts besides `mainPart` put in: for states loaded in pieces. */
  fill(state: S, parts: StateParts): S;
  /** The parts besides `mainPart` that folding this event reads or changes. */
  partsFor(event: RecordedEvent): string[];
  /** The parts besides `mainPart` that hold these items. */
  partsOfItems(itemIds: readonly string[]): string[];
}

const bucketPart = (index: number) => `items.${index}`;

/** The parts of the item buckets that hold these items. */
export function itemParts(itemIds: readonly string[]): string[] {
  if (itemIds.length === 1) return [bucketPart(bucketOf(itemIds[0]!))];
  return [...new Set(itemIds.map((id) => bucketPart(bucketOf(id))))];
}

function splitItems<V>(items: ItemTable<V>, parts: Map<string, unknown>): void {
  items.forEach((bucket, index) => parts.set(bucketPart(index), bucket));
}

function joinItems<V>(parts: StateParts, base?: ItemTable<V>): ItemTable<V> {
  return Array.from(
    { length: itemBucketCount },
    (_, index) =>
      (parts.get(bucketPart(index)) as Record<string, V> | undefined) ?? base?.[index] ?? {},
  );
}

/**
 * Every job's progress and ETA inputs, by job id: what `status`, the job lists, the
 * project views and stage metrics read.
 */
export const jobsProjection: PersistedProjection<JobEtaState> = {
  name: 'jobs',
  projection: jobEta,
  split(state) {
    const parts = new Map<string, unknown>();
    parts.set(mainPart, { ...state, progress: { ...state.progress, items: [] } });
    splitItems(state.progress.items, parts);
    return parts;
  },
  join(parts) {
    const main = parts.get(mainPart) as JobEtaState | undefined;
    if (!main) return jobEta.initial();
    return { ...main, progress: { ...main.progress, items: joinItems(parts) } };
  },
  fill(state, parts) {
    return {
      ...state,
      progress: { ...state.progress, items: joinItems(parts, state.progress.items) },
    };
  },
  partsFor: (event) => itemParts(eventItemIds(event)),
  partsOfItems: itemParts,
};

/** The persisted projections a ledger keeps, by name. */
export const persistedProjections: ReadonlyMap<string, PersistedProjection<unknown>> = new Map([
  [jobsProjection.name, jobsProjection],
]);
