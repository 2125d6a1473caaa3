import type { Projection } from '../../projections/projection.ts';

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
  private readonly folds = new WeakMap<Projection<unknown>, Map<string, CachedFold<unknown>>>();

  constructor(private readonly jobsPerProjection: number) {}

  get<S>(projection: Projection<S>, jobId: string): CachedFold<S> | undefined {
    const jobs = this.folds.get(projection);
    const found = jobs?.get(jobId);
    if (!jobs || !found) return undefined;
    // Most recently read last.
    jobs.delete(jobId);
    jobs.set(jobId, found);
    return found as CachedFold<S>;
  }

  set<S>(projection: Projection<S>, jobId: string, fold: CachedFold<S>): void {
    if (this.jobsPerProjection === 0) return;
    const key = projection as Projection<unknown>;
    let jobs = this.folds.get(key);
    if (!jobs) this.folds.set(key, (jobs = new Map<string, CachedFold<unknown>>()));
    jobs.delete(jobId);
    jobs.set(jobId, fold);
    if (jobs.size > this.jobsPerProjection) jobs.delete(jobs.keys().next().value!);
  }
}
