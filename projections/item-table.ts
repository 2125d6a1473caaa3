/**
 * A map from item id to a value, split into fixed buckets so that changing one item
 * copies one bucket, not the whole map. Plain JSON, so states stay serialisable.
 */
export type ItemTable<V> = Record<string, V>[];

const bucketCount = 64;

/** An empty table. */
export function emptyItemTable<V>(): ItemTable<V> {
  return Array.from({ length: bucketCount }, () => ({}));
}

function bucketOf(itemId: string): number {
  // FNV-1a: cheap, stable across runs and machines.
  let hash = 0x811c9dc5;
  for (let index = 0; index < itemId.length; index += 1) {
    hash ^= itemId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % bucketCount;
}

/** The value stored for an item, if any. */
export function getItem<V>(table: ItemTable<V>, itemId: string): V | undefined {
  const bucket = table[bucketOf(itemId)]!;
  return Object.hasOwn(bucket, itemId) ? bucket[itemId] : undefined;
}

/** A new table with the item set; the input table is left as it was. */
export function setItems<V>(table: ItemTable<V>, updates: ReadonlyMap<string, V>): ItemTable<V> {
  if (updates.size === 0) return table;
  const next = table.slice();
  const copied = new Set<number>();
  for (const [itemId, value] of updates) {
    const index = bucketOf(itemId);
    if (!copied.has(index)) {
      next[index] = { ...next[index] };
      copied.add(index);
    }
    // A data property even for ids such as `__proto__`.
    Object.defineProperty(next[index]!, itemId, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return next;
}

/** Every item and its value, in a stable order (by bucket, then insertion). */
export function* itemEntries<V>(table: ItemTable<V>): Generator<[string, V]> {
  for (const bucket of table) yield* Object.entries(bucket);
}
