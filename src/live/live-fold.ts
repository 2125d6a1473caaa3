import type { Projection } from '../../projections/projection.ts';
import type { Ledger } from '../ledger.ts';

/**
 * Keeps one job's projection current by folding only the events appended since the
 * last refresh.
 *
 * @example
 * const live = new LiveFold(ledger, jobId, jobProgress);
 * const progress = await live.refresh();
 */
export class LiveFold<S> {
  private current: S;
  private version = 0;

  constructor(
    private readonly ledger: Ledger,
    readonly jobId: string,
    private readonly projection: Projection<S>,
  ) {
    this.current = projection.initial();
  }

  /** The state as of the last refresh. */
  get state(): S {
    return this.current;
  }

  /** Folds what was appended since the last call and returns the new state. */
  async refresh(): Promise<S> {
    for (;;) {
      const events = await this.ledger.readStream(this.jobId, { fromVersion: this.version + 1 });
      for (const event of events) this.current = this.projection.evolve(this.current, event);
      if (events.length === 0) return this.current;
      this.version = events.at(-1)!.version;
    }
  }
}
