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
  // Starting from the basis as an int32 keeps the loop in integers; the bits are the same.
  let hash = 0x811c9dc5 | 0;
  for (let index = 0; index < itemId.length; index += 1) {
    hash = Math.imul(hash ^ itemId.charCodeAt(index), 0x01000193);
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
  // Reducers read an item and then set it: the bucket is hashed once for both.
  let lastId: string | undefined;
  let lastBucket = 0;
  const bucketFor = (itemId: string): number => {
    if (itemId !== lastId) {
      lastId = itemId;
      lastBucket = bucketOf(itemId);
    }
    return lastBucket;
  };
  return {
    get(itemId) {
      const bucket = buckets[bucketFor(itemId)]!;
      return Object.hasOwn(bucket, itemId) ? bucket[itemId] : undefined;
    },
    set(itemId, value) {
      const index = bucketFor(itemId);
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
 * A writer for accumulators: each item gets a number, its place in order of first sight,
 * found through a private open-addressing table of the ids' hashes. The hash is the one
 * `bucketOf` uses, so an item is hashed once, when first seen, and its bucket comes free
 * in `table()`; a lookup compares whole ids only on a hash match, where a `Map` of
 * strings would read a key string at each step of its chain. A set right after a get of
 * the same id reuses the number found. `table()` builds a fresh table, once per result.
 */
export function numberedItemWriter<V>(source: ItemTable<V>): ItemWriter<V> {
  const ids: string[] = [];
  const values: V[] = [];
  // Small to start with: a fold of a log of many short jobs holds one writer per job.
  let hashes = new Int32Array(8);
  // Open addressing: each entry is an item's number + 1, 0 when empty; at most half full.
  let entries = new Int32Array(16);
  let mask = entries.length - 1;
  let lastId: string | undefined;
  // The number of `lastId`, or -1 when it has none yet.
  let lastSlot = -1;
  let lastHash = 0;

  const grow = () => {
    const moved = new Int32Array(hashes.length * 2);
    moved.set(hashes);
    hashes = moved;
    entries = new Int32Array(entries.length * 2);
    mask = entries.length - 1;
    for (let slot = 0; slot < ids.length; slot += 1) {
      let at = spread(hashes[slot]!) & mask;
      while (entries[at] !== 0) at = (at + 1) & mask;
      entries[at] = slot + 1;
    }
  };
  const slotOf = (itemId: string): number => {
    if (itemId === lastId) return lastSlot;
    const hash = itemHash(itemId) | 0;
    let at = spread(hash) & mask;
    let slot = -1;
    for (let entry = entries[at]!; entry !== 0; entry = entries[at]!) {
      if (hashes[entry - 1] === hash && ids[entry - 1] === itemId) {
        slot = entry - 1;
        break;
      }
      at = (at + 1) & mask;
    }
    lastId = itemId;
    lastSlot = slot;
    lastHash = hash;
    return slot;
  };
  const set = (itemId: string, value: V): void => {
    const slot = slotOf(itemId);
    if (slot >= 0) {
      values[slot] = value;
      return;
    }
    if (ids.length === hashes.length) grow();
    lastSlot = ids.length;
    let at = spread(lastHash) & mask;
    while (entries[at] !== 0) at = (at + 1) & mask;
    entries[at] = lastSlot + 1;
    hashes[lastSlot] = lastHash;
    ids.push(itemId);
    values.push(value);
  };
  for (const [itemId, value] of itemEntries(source)) set(itemId, value);
  return {
    get(itemId) {
      const slot = slotOf(itemId);
      return slot >= 0 ? values[slot] : undefined;
    },
    set,
    table() {
      const table = emptyItemTable<V>();
      for (let slot = 0; slot < ids.length; slot += 1) {
        // The bucket of `bucketOf`: the hash's low bits, as the count is a power of two.
        setOwn(table[hashes[slot]! & (bucketCount - 1)]!, ids[slot]!, values[slot]!);
      }
      return table;
    },
  };
}

/** Mixes a hash's high bits into its low ones, which pick the place in the table. */
function spread(hash: number): number {
  return hash ^ (hash >>> 16);
}
