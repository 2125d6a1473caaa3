import { describe, expect, it } from 'vitest';
import { readAhead } from '../src/store/read-ahead.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const failsSoon = () =>
  sleep(5).then(() => {
    throw new Error('page 2 failed');
  });

// vitest fails the run on an unhandled rejection, so these also check that none occurs.
describe('readAhead', () => {
  it('hands out every page in order, asking for each next one before handing out the last', async () => {
    const asked: number[] = [];
    const read = (page: number) => (asked.push(page), Promise.resolve(page));
    const seen: number[] = [];
    for await (const page of readAhead(
      () => read(1),
      (page) => (page < 3 ? read(page + 1) : null),
    )) {
      seen.push(page);
      expect(asked.at(-1)).toBe(Math.min(page + 1, 3));
    }
    expect(seen).toEqual([1, 2, 3]);
  });

  it('raises a failed read ahead to the caller when it gets there, never before', async () => {
    const seen: number[] = [];
    const reading = (async () => {
      for await (const page of readAhead(
        () => Promise.resolve(1),
        (page) => (page === 1 ? failsSoon() : null),
      )) {
        seen.push(page);
        await sleep(30); // the read of page 2 fails meanwhile
      }
    })();
    await expect(reading).rejects.toThrow('page 2 failed');
    expect(seen).toEqual([1]);
  });

  it('lets a caller stop early while a read ahead is failing', async () => {
    for await (const page of readAhead(
      () => Promise.resolve(1),
      () => failsSoon(),
    )) {
      expect(page).toBe(1);
      break;
    }
    await sleep(30);
  });
});
