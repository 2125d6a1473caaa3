import type { Projection } from '../../projections/projection.ts';
import { RecentlyUsed } from '../recently-used.ts';

/** A job folded through a projection up to a stream version. */
export interface CachedFold<S> {
  state: S;
  version: number;
}

/**
 * The latest fold of recently read jobs, per projection, so the next read of a job folds
 * only the events after it: the log is immutable and folding is deterministic, so a saved
 * prefix plus the rest equals the whole. Bounded: the least recently read job goes first.
 * States are shared with callers, who never change them (see `Projection.accumulate`).
 */
export class FoldCache {
  private readonly folds = new WeakMap<Projection<unknown>, RecentlyUsed<CachedFold<unknown>>>();

  constructor(private readonly jobsPerProjection: number) {}

  get<S>(projection: Projection<S>, jobId: string): CachedFold<S> | undefined {
    return this.folds.get(projection)?.get(jobId) as CachedFold<S> | undefined;
  }

  set<S>(projection: Projection<S>, jobId: string, fold: CachedFold<S>): void {
    if (this.jobsPerProjection === 0) return;
    const key = projection as Projection<unknown>;
    let jobs = this.folds.get(key);
    if (!jobs) this.folds.set(key, (jobs = new RecentlyUsed(this.jobsPerProjection)));
    jobs.set(jobId, fold);
  }
}
