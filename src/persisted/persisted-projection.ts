import type { RecordedEvent } from '../../schema/recorded-event.ts';
import {
  emptyItemTable,
  getItem,
  itemBucketCount,
  itemHash,
} from '../../projections/item-table.ts';
import { setOwn } from '../../projections/own.ts';
import type { ItemTable } from '../../projections/item-table.ts';
import { jobEta } from '../../projections/job-eta.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import { eventItemIds } from '../../projections/job-items.ts';
import type { Projection } from '../../projections/projection.ts';

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
  /** The per-job fold. */
  readonly projection: Projection<S>;
  /**
   * The version of what is stored: of the fold and of how its states are split into
   * parts. A generation written under another version is rebuilt.
   */
  readonly version: number;
  /**
   * What folding `events` into `state` changed, as parts to write: `mainPart` whole, and
   * of each touched item part only the touched items, which the store merges into the
   * part (items are never removed), so a batch writes what it changed.
   */
  changedParts(state: S, events: readonly RecordedEvent[]): Map<string, unknown>;
  /** The state back from parts; missing item parts read as empty. */
  join(parts: StateParts): S;
  /**
   * `state` with more of its items added: each given part holds some or all of one item
   * part's items, none of them in `state` yet. For states loaded in pieces.
   */
  withItems(state: S, parts: StateParts): S;
  /** The parts besides `mainPart` that folding this event reads or changes. */
  partsFor(event: RecordedEvent): string[];
  /** The items folding this event reads or changes. */
  itemsFor(event: RecordedEvent): string[];
  /** The parts besides `mainPart` that hold these items. */
  partsOfItems(itemIds: readonly string[]): string[];
}

/**
 * Items are stored in this many parts, finer than the 64 in-memory buckets, so a part of
 * even a large job stays small: a batch rewrites, and a status query reads, a few small
 * rows, under the size at which PostgreSQL compresses them. Part N holds items of bucket
 * N mod 64.
 */
const itemPartCount = 1_024;

const itemPartPrefix = 'items.';

const itemPartOf = (itemId: string) => `${itemPartPrefix}${itemHash(itemId) % itemPartCount}`;

/** The parts that hold these items. */
export function itemParts(itemIds: readonly string[]): string[] {
  if (itemIds.length === 1) return [itemPartOf(itemIds[0]!)];
  return [...new Set(itemIds.map(itemPartOf))];
}

/** `base` with the items of the given item parts put into their buckets; `base` is kept. */
function joinItems<V>(parts: StateParts, base?: ItemTable<V>): ItemTable<V> {
  const table = base ? base.slice() : emptyItemTable<V>();
  const copied = new Set<number>();
  for (const [name, part] of parts) {
    if (!name.startsWith(itemPartPrefix)) continue;
    const bucket = Number(name.slice(itemPartPrefix.length)) % itemBucketCount;
    if (!copied.has(bucket)) {
      table[bucket] = { ...table[bucket] };
      copied.add(bucket);
    }
    // setOwn: an item id may be any string, "__proto__" too.
    for (const [itemId, value] of Object.entries(part as Record<string, V>)) {
      setOwn(table[bucket]!, itemId, value);
    }
  }
  return table;
}

/**
 * Every job's progress and ETA inputs, by job id: what `status`, the job lists, the
 * project views and stage metrics read.
 */
export const jobsProjection: PersistedProjection<JobEtaState> = {
  name: 'jobs',
  projection: jobEta,
  // Fold version × 100 + layout version (2: items in 1,024 parts, merged).
  version: jobEta.version * 100 + 2,
  changedParts(state, events) {
    const parts = new Map<string, unknown>();
    parts.set(mainPart, { ...state, progress: { ...state.progress, items: [] } });
    const { items } = state.progress;
    for (const event of events) {
      for (const itemId of eventItemIds(event)) {
        const value = getItem(items, itemId);
        if (value === undefined) continue;
        const name = itemPartOf(itemId);
        let part = parts.get(name) as Record<string, unknown> | undefined;
        if (!part) parts.set(name, (part = {}));
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
