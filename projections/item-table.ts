import { setOwn } from './own.ts';

/**
 * A map from item id to a value, split into fixed buckets so that changing one item
 * copies one bucket, not the whole map. Plain JSON, so states stay serialisable.
 */
export type ItemTable<V> = Record<string, V>[];

const bucketCount = 64;

/** How many buckets every item table has. */
export const itemBucketCount = bucketCount;

/** An empty table. */
export function emptyItemTable<V>(): ItemTable<V> {
  return Array.from({ length: bucketCount }, () => ({}));
}

/** True when no bucket holds an item. */
export function isEmptyTable<V>(table: ItemTable<V>): boolean {
  for (const bucket of table) {
    for (const _ in bucket) return false;
  }
  return true;
}

/** A 32-bit hash of an item id (FNV-1a): cheap, and stable across runs and machines. */
export function itemHash(itemId: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < itemId.length; index += 1) {
    hash ^= itemId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** The bucket an item id falls in, 0 to `itemBucketCount - 1`: stable everywhere. */
export function bucketOf(itemId: string): number {
  return itemHash(itemId) % bucketCount;
}

/** The value stored for an item, if any. */
export function getItem<V>(table: ItemTable<V>, itemId: string): V | undefined {
  const bucket = table[bucketOf(itemId)]!;
  return Object.hasOwn(bucket, itemId) ? bucket[itemId] : undefined;
}

/** Every item and its value, in a stable order (by bucket, then insertion). */
export function* itemEntries<V>(table: ItemTable<V>): Generator<[string, V]> {
  for (const bucket of table) yield* Object.entries(bucket);
}

/**
 * Item reads and writes for a fold in progress; `table()` hands the items out as an
 * `ItemTable` that the writer will not change again.
 *
 * @example
 * const writer = itemWriter(state.items);
 * writer.set('doc-1', 'completed');
 * const items = writer.table(); // state.items is unchanged
 */
export interface ItemWriter<V> {
  get(itemId: string): V | undefined;
  set(itemId: string, value: V): void;
  /** The items so far, as a table this writer will not change again. */
  table(): ItemTable<V>;
}

/**
 * The pure path's writer, copy on write: a bucket shared with `source` or with a table
 * handed out is copied the first time one of its items changes, so `table()` costs one
 * array copy.
 */
export function itemWriter<V>(source: ItemTable<V>): ItemWriter<V> {
  const buckets = source.slice();
  const owned = new Array<boolean>(bucketCount).fill(false);
  return {
    get: (itemId) => getItem(buckets, itemId),
    set(itemId, value) {
      const index = bucketOf(itemId);
      if (!owned[index]) {
        buckets[index] = { ...buckets[index] };
        owned[index] = true;
      }
      setOwn(buckets[index]!, itemId, value);
    },
    table() {
      owned.fill(false);
      return buckets.slice();
    },
  };
}

/**
 * A writer for accumulators: items in a private `Map`, which is cheaper per change than
 * object buckets when every event brings its own copy of an id string; `table()` builds
 * a fresh table from it, once per result.
 */
export function mapItemWriter<V>(source: ItemTable<V>): ItemWriter<V> {
  const items = new Map<string, V>(itemEntries(source));
  return {
    get: (itemId) => items.get(itemId),
    set(itemId, value) {
      items.set(itemId, value);
    },
    table() {
      const table = emptyItemTable<V>();
      // forEach, unlike for-of, allocates no entry pair per item.
      items.forEach((value, itemId) => setOwn(table[bucketOf(itemId)]!, itemId, value));
      return table;
    },
  };
}
