import { describe, expect, it } from 'vitest';
import type { Projection } from '../projections/projection.ts';
import { FoldCache } from '../src/fold-cache.ts';

const count: Projection<number> = {
  name: 'count',
  version: 1,
  initial: () => 0,
  evolve: (n) => n + 1,
};
const other: Projection<number> = { ...count, name: 'other' };

describe('fold cache', () => {
  it('keeps the latest fold per projection and job, dropping the least recently read', () => {
    const cache = new FoldCache(2);
    cache.set(count, 'a', { state: 1, version: 1 });
    cache.set(count, 'b', { state: 2, version: 2 });
    expect(cache.get(count, 'a')).toEqual({ state: 1, version: 1 });
    cache.set(count, 'c', { state: 3, version: 3 });
    // b was read least recently: it went.
    expect(cache.get(count, 'b')).toBeUndefined();
    expect(cache.get(count, 'a')?.version).toBe(1);
    expect(cache.get(count, 'c')?.version).toBe(3);
    // Projections do not share folds.
    expect(cache.get(other, 'a')).toBeUndefined();
    cache.set(count, 'a', { state: 9, version: 9 });
    expect(cache.get(count, 'a')).toEqual({ state: 9, version: 9 });
  });

  it('keeps nothing with room for none', () => {
    const cache = new FoldCache(0);
    cache.set(count, 'a', { state: 1, version: 1 });
    expect(cache.get(count, 'a')).toBeUndefined();
  });
});
