import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * Lets long synchronous work give the event loop a turn once every `sliceMs`, so requests
 * that arrive meanwhile wait one slice, not the whole work.
 *
 * @example
 * const slice = new TimeSlice(5);
 * for (const job of jobs) {
 *   foldOne(job);
 *   await slice.yieldIfDue();
 * }
 */
export class TimeSlice {
  private sliceStarted = performance.now();

  constructor(private readonly sliceMs: number) {}

  /** Yields to the event loop if this slice has run `sliceMs` or more. */
  async yieldIfDue(): Promise<void> {
    if (performance.now() - this.sliceStarted < this.sliceMs) return;
    await nextTurn();
    this.sliceStarted = performance.now();
  }
}
