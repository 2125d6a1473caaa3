import { performance } from 'node:perf_hooks';
import { accumulatorFor } from '../../projections/projection.ts';
import type { Projection } from '../../projections/projection.ts';
import { logStart, parseLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import type { LogReader } from '../store/log-reads.ts';
import { FoldCache, foldIncrementally } from '../fold-cache.ts';

/** What `replay` reports when it has caught up. */
export interface ReplayResult<S> {
  state: S;
  /** Continue a later replay from here. */
  cursor: LogCursor;
  events: number;
  elapsedMs: number;
  eventsPerSecond: number;
}

/**
 * Folding the log through any projection, on demand: one job (keeping the last fold of
 * recently read jobs, so a job read again folds only what was appended since), or the
 * whole log.
 */
export class JobFolds {
  constructor(
    private readonly log: LogReader,
    private readonly cache: FoldCache = new FoldCache(32),
  ) {}

  /** One job's events through a projection; the state is shared with later reads, read-only. */
  project<S>(jobId: string, projection: Projection<S>): Promise<S> {
    return foldIncrementally(this.cache, projection, jobId, (fromVersion) =>
      this.log.readStreamPages(jobId, fromVersion),
    );
  }

  /** The whole log (or what follows `after`) through a projection, a batch at a time. */
  async replay<S>(
    projection: Projection<S>,
    options: { after?: LogCursor | string; state?: S; batchSize?: number } = {},
  ): Promise<ReplayResult<S>> {
    const started = performance.now();
    const accumulator = accumulatorFor(projection, options.state ?? projection.initial());
    let cursor = options.after === undefined ? logStart : parseLogCursor(options.after);
    let count = 0;
    for await (const page of this.log.readLogBatches({
      after: cursor,
      ...(options.batchSize === undefined ? {} : { limit: options.batchSize }),
    })) {
      for (const event of page.events) accumulator.add(event);
      count += page.events.length;
      cursor = page.next;
    }
    const elapsedMs = performance.now() - started;
    return {
      state: accumulator.result(),
      cursor,
      events: count,
      elapsedMs,
      eventsPerSecond: elapsedMs > 0 ? (count * 1000) / elapsedMs : 0,
    };
  }
}
