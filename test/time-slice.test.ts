import { describe, expect, it } from 'vitest';
import { TimeSlice } from '../src/time-slice.ts';

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
