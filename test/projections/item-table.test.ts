import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bucketOf,
  emptyItemTable,
  getItem,
  itemHash,
  itemWriter,
  numberedItemWriter,
} from '../../projections/item-table.ts';
import type { ItemTable, ItemWriter } from '../../projections/item-table.ts';
import { setOwn } from '../../projections/own.ts';

/** FNV-1a as first written: the stored item parts are placed by it, so it may never change. */
function referenceHash(itemId: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < itemId.length; index += 1) {
    hash ^= itemId.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Ids from a small pool (so reads and writes meet), producer keys and fresh copies. */
const itemId = fc.oneof(
  fc.constantFrom('doc-1', 'doc-2', '__proto__', 'constructor', 'toString', '', 'é', '😀'),
  fc.string({ maxLength: 6 }),
  fc.nat(3_000).map((n) => `job/doc-${n}`),
);

type Operation = { kind: 'get'; itemId: string } | { kind: 'set'; itemId: string; value: number };
const operations = fc.array(
  fc.oneof(
    itemId.map((id): Operation => ({ kind: 'get', itemId: id })),
    fc
      .tuple(itemId, fc.integer())
      .map(([id, value]): Operation => ({ kind: 'set', itemId: id, value })),
  ),
  { maxLength: 400 },
);

/** `base` with a Map's writes set into it: buckets by `bucketOf`, new items in first-set order. */
function modelTable(model: Map<string, number>, base: ItemTable<number>): ItemTable<number> {
  const table = emptyItemTable<number>();
  for (const [bucket, items] of base.entries()) {
    for (const [id, value] of Object.entries(items)) setOwn(table[bucket]!, id, value);
  }
  for (const [id, value] of model) setOwn(table[bucketOf(id)]!, id, value);
  return table;
}

/** Runs the operations on a writer and on a Map, comparing every read. */
function runAgainstModel(writer: ItemWriter<number>, base: ItemTable<number>, ops: Operation[]) {
  const model = new Map<string, number>();
  for (const op of ops) {
    if (op.kind === 'set') {
      writer.set(op.itemId, op.value);
      model.set(op.itemId, op.value);
    } else {
      const expected = model.has(op.itemId) ? model.get(op.itemId) : getItem(base, op.itemId);
      expect(writer.get(op.itemId)).toBe(expected);
    }
  }
  return model;
}

/** Same items, values and order in every bucket. */
/** A table holding what `ops` leave, as a fold would hand it to the next one. */
function tableAfter(ops: Operation[]): ItemTable<number> {
  const writer = numberedItemWriter<number>(emptyItemTable());
  runAgainstModel(writer, emptyItemTable(), ops);
  return writer.table();
}

const entriesOf = (table: ItemTable<number>) => table.map((bucket) => Object.entries(bucket));

describe('item ids', () => {
  it('hash as FNV-1a does, whatever the string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (id) => {
        expect(itemHash(id)).toBe(referenceHash(id));
        expect(bucketOf(id)).toBe(referenceHash(id) % 64);
      }),
    );
  });
});

describe('the numbered writer of accumulators', () => {
  it('reads back what was set and hands out the table a Map of the same writes makes', () => {
    fc.assert(
      fc.property(operations, (ops) => {
        const writer = numberedItemWriter<number>(emptyItemTable());
        const model = runAgainstModel(writer, emptyItemTable(), ops);
        const table = writer.table();
        expect(entriesOf(table)).toEqual(entriesOf(modelTable(model, emptyItemTable())));
        // Writing on after a result leaves the result as it was.
        const before = JSON.stringify(table);
        for (const op of ops) if (op.kind === 'set') writer.set(op.itemId, op.value + 1);
        expect(JSON.stringify(table)).toBe(before);
      }),
    );
  });

  it('grows past thousands of items, ids alike in all but their tail', () => {
    const writer = numberedItemWriter<number>(emptyItemTable());
    const ids = Array.from({ length: 20_000 }, (_, n) => `replay-0001/doc-${n}`);
    ids.forEach((id, n) => writer.set(id, n));
    // Fresh copies of the ids, as each event brings its own.
    ids.forEach((id, n) => expect(writer.get(`${id} `.trimEnd())).toBe(n));
    expect(writer.get('replay-0001/doc-20000')).toBeUndefined();
    const table = writer.table();
    expect(table.reduce((sum, bucket) => sum + Object.keys(bucket).length, 0)).toBe(ids.length);
    ids.forEach((id, n) => expect(getItem(table, id)).toBe(n));
  });

  it('starts from a table it is given', () => {
    fc.assert(
      fc.property(operations, operations, (seed, ops) => {
        const base = tableAfter(seed);
        const writer = numberedItemWriter(base);
        const model = runAgainstModel(writer, base, ops);
        // Given items keep their places; new ones follow in the order first set.
        expect(entriesOf(writer.table())).toEqual(entriesOf(modelTable(model, base)));
      }),
    );
  });
});

describe('the copy-on-write writer', () => {
  it('agrees with a Map and leaves its source as it was', () => {
    fc.assert(
      fc.property(operations, operations, (seed, ops) => {
        const base = tableAfter(seed);
        const frozen = JSON.stringify(base);
        const writer = itemWriter(base);
        const model = runAgainstModel(writer, base, ops);
        expect(JSON.stringify(base)).toBe(frozen);
        const table = writer.table();
        for (const [id, value] of model) expect(getItem(table, id)).toBe(value);
        for (const bucket of base) {
          for (const [id, value] of Object.entries(bucket)) {
            expect(getItem(table, id)).toBe(model.has(id) ? model.get(id) : value);
          }
        }
      }),
    );
  });
});
