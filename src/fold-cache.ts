import { accumulatorFor } from '../projections/projection.ts';
import type { Accumulator, Projection } from '../projections/projection.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { RecentlyUsed } from './recently-used.ts';

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

/**
 * A job through a projection, from its cached fold on: folds only the pages of events
 * after the cached version (`pagesFrom(version + 1)`), and caches what it reached. The
 * one incremental fold of a job, whether its events come from the store or over HTTP.
 */
export async function foldIncrementally<S>(
  cache: FoldCache,
  projection: Projection<S>,
  jobId: string,
  pagesFrom: (fromVersion: number) => AsyncIterable<readonly RecordedEvent[]>,
): Promise<S> {
  const cached = cache.get(projection, jobId);
  let accumulator: Accumulator<S> | null = null;
  let version = cached?.version ?? 0;
  for await (const events of pagesFrom(version + 1)) {
    if (events.length === 0) continue;
    // Made only when there is something to add: a job read again unchanged costs no copy.
    accumulator ??= accumulatorFor(projection, cached?.state);
    for (const event of events) accumulator.add(event);
    version = events.at(-1)?.version ?? version;
  }
  if (cached && version === cached.version) return cached.state;
  const state = accumulator ? accumulator.result() : projection.initial();
  if (version > 0) cache.set(projection, jobId, { state, version });
  return state;
}
