import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { LogCursor } from '../src/cursors.ts';
import { logStart } from '../src/cursors.ts';
import { followLog } from '../src/live/log-follower.ts';
import { TimeSlice } from '../src/time-slice.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A log of numbers in memory, read by position, and the pages a follower of it yields
 * while five events arrive 20 ms apart, each with a wake-up.
 */
async function pagesWhileFiveArrive(gatherMs: number): Promise<number[][]> {
  const log: number[] = [];
  const wakeUps = new Subject<void>();
  const stop = new AbortController();
  const readPage = (after: LogCursor, limit: number) => {
    const from = Number(after.position);
    const events = log.slice(from, from + limit);
    const next = { transactionId: 0n, position: BigInt(from + events.length) };
    return Promise.resolve({ events, next });
  };
  const pages: number[][] = [];
  const following = (async () => {
    const follow = followLog({
      after: logStart,
      batchSize: 100,
      pollIntervalMs: 60_000,
      gatherMs,
      readPage,
      wakeUps,
      signal: stop.signal,
    });
    for await (const page of follow) {
      pages.push(page.events);
      if (pages.flat().length === 5) break;
    }
  })();
  for (let event = 1; event <= 5; event += 1) {
    log.push(event);
    wakeUps.next();
    await sleep(20);
  }
  await following;
  stop.abort();
  return pages;
}

describe('followLog', () => {
  it('without gathering, reads at each wake-up', async () => {
    const pages = await pagesWhileFiveArrive(0);
    expect(pages[0]).toEqual([1]);
    expect(pages.flat()).toEqual([1, 2, 3, 4, 5]);
  });

  it('with gatherMs, lets what arrives after a wake-up join the next page', async () => {
    const pages = await pagesWhileFiveArrive(1_000);
    expect(pages).toEqual([[1, 2, 3, 4, 5]]);
  });

  it('ends a gathering wait when its signal aborts', async () => {
    const stop = new AbortController();
    const wakeUps = new Subject<void>();
    let reads = 0;
    const follow = followLog({
      after: logStart,
      batchSize: 100,
      pollIntervalMs: 60_000,
      gatherMs: 60_000,
      readPage: (after) => ((reads += 1), Promise.resolve({ events: [], next: after })),
      wakeUps,
      signal: stop.signal,
    });
    const done = follow.next();
    await sleep(10);
    wakeUps.next();
    await sleep(10);
    // Mid-gathering (a minute long): the test's own timeout fails it if the abort is not heard.
    stop.abort();
    expect(await done).toEqual({ done: true, value: undefined });
    expect(reads).toBe(1);
  });
});

describe('TimeSlice', () => {
  it('gives the event loop a turn during long synchronous work', async () => {
    let timerRan = false;
    setTimeout(() => (timerRan = true), 0);
    const slice = new TimeSlice(5);
    let ranDuringWork = false;
    const until = performance.now() + 40;
    while (performance.now() < until) {
      // Busy work between the pauses, as a fold of many events would be.
      for (let spin = 0; spin < 10_000; spin += 1) Math.sqrt(spin);
      await slice.yieldIfDue();
      if (timerRan) ranDuringWork = true;
    }
    expect(ranDuringWork).toBe(true);
  });

  it('does not yield before its slice is used up', async () => {
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    const slice = new TimeSlice(60_000);
    for (let step = 0; step < 100; step += 1) await slice.yieldIfDue();
    expect(immediateRan).toBe(false);
  });
});
