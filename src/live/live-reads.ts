import {
  asyncScheduler,
  defer,
  distinctUntilChanged,
  map,
  mergeMap,
  Observable,
  startWith,
  switchMap,
  throttleTime,
  throwError,
} from 'rxjs';
import * as z from 'zod';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { accumulatorFor } from '../../projections/projection.ts';
import type { Projection } from '../../projections/projection.ts';
import type { JobView } from '../queries/job-list.ts';
import type { JobsQuery } from '../queries/jobs-query.ts';
import { logStart, parseLogCursor, type LogCursor } from '../cursors.ts';
import type { LogReader, ReadAllOptions, ReadAllPage } from '../store/log-reads.ts';
import type { WakeUps } from '../store/wake-ups.ts';
import { InvalidInputError } from '../errors.ts';
import { parseInput, toValidationIssues } from '../validation.ts';
import { followLog } from './log-follower.ts';

/** Options of `subscribe` and `follow`: a filter, a starting log cursor, and pacing. */
export interface SubscribeOptions extends Omit<ReadAllOptions, 'limit'> {
  /** Events per read while catching up (default 1,000). */
  batchSize?: number;
  /** Longest wait between polls when no wake-up arrives (default 1,000 ms). */
  pollIntervalMs?: number;
}

/** Options of `watch`. */
export interface WatchOptions {
  /** Emit at most one snapshot per this many milliseconds, the latest (default 0: every change). */
  throttleMs?: number;
  /** Longest wait between polls when no wake-up arrives (default 1,000 ms). */
  pollIntervalMs?: number;
}

const pacingSchema = z.strictObject({
  batchSize: z.number().int().min(1).max(limits.readPage).optional(),
  pollIntervalMs: z.number().int().min(10).max(60_000).optional(),
  throttleMs: z.number().int().min(0).max(60_000).optional(),
});

/** What live reads need: the log, its wake-ups, and the job list `watchJobs` re-reads. */
export interface LivePorts {
  log: LogReader;
  wakeUps: WakeUps;
  jobs(query: JobsQuery): Promise<JobView[]>;
}

/**
 * Following the log and watching folds of it: catch up in pages, then wait for wake-ups
 * (LISTEN/NOTIFY) or the poll interval, reading gap-safe so nothing is ever skipped.
 */
export class LiveReads {
  constructor(private readonly ports: LivePorts) {}

  /** Pages of the log after a cursor, caught up and then live, until `signal` aborts. */
  async *follow(options: SubscribeOptions = {}, signal?: AbortSignal): AsyncGenerator<ReadAllPage> {
    const { batchSize = 1_000, pollIntervalMs = 1_000, after, ...filter } = options;
    parseInput(pacingSchema, { batchSize, pollIntervalMs });
    const start = after === undefined ? logStart : parseLogCursor(after);
    const read = (cursor: LogCursor, limit: number) =>
      this.ports.log.readLog({ ...filter, after: cursor, limit }, { gapSafe: true });
    // Validates the filter before anything is awaited.
    await read(start, 1);
    yield* followLog({
      after: start,
      batchSize,
      pollIntervalMs,
      readPage: read,
      wakeUps: this.ports.wakeUps,
      signal: signal ?? new AbortController().signal,
    });
  }

  /** `follow` as an Observable of pages; unsubscribing stops the reads. */
  subscribePages(options: SubscribeOptions = {}): Observable<ReadAllPage> {
    return new Observable<ReadAllPage>((subscriber) => {
      const controller = new AbortController();
      void (async () => {
        for await (const page of this.follow(options, controller.signal)) {
          if (subscriber.closed) break;
          subscriber.next(page);
        }
        subscriber.complete();
      })().catch((error: unknown) => subscriber.error(error));
      return () => controller.abort();
    });
  }

  /** `follow` as an Observable of events. */
  subscribe(options: SubscribeOptions = {}): Observable<RecordedEvent> {
    return this.subscribePages(options).pipe(mergeMap((page) => page.events));
  }

  /** One job folded through a projection, live: the state now, then after every change. */
  watchFold<S>(
    jobId: string,
    projection: Projection<S>,
    options: WatchOptions = {},
  ): Observable<S> {
    const parsed = pacingSchema.safeParse(options);
    if (!parsed.success) return throwError(() => invalidInput(parsed.error));
    const { throttleMs = 0, pollIntervalMs } = parsed.data;
    const snapshots = defer(async () => {
      // Taken first: anything the fold below misses comes after this cursor.
      const after = await this.ports.log.liveCursor();
      const accumulator = accumulatorFor(projection);
      for await (const events of this.ports.log.readStreamPages(jobId)) {
        for (const event of events) accumulator.add(event);
      }
      return { after, accumulator };
    }).pipe(
      switchMap(({ after, accumulator }) =>
        this.subscribePages({ after, streamIds: [jobId], ...definedPoll(pollIntervalMs) }).pipe(
          map((page) => {
            // Events the first fold already saw come again; the projection skips them.
            for (const event of page.events) accumulator.add(event);
            return accumulator.result();
          }),
          startWith(accumulator.result()),
        ),
      ),
      distinctUntilChanged(),
    );
    return throttleMs > 0 ? snapshots.pipe(throttleLatest(throttleMs)) : snapshots;
  }

  /** The job list, live: read first, then again after each change, at most once per `throttleMs`. */
  watchJobs(query: JobsQuery = {}, options: WatchOptions = {}): Observable<JobView[]> {
    const parsed = pacingSchema.safeParse(options);
    if (!parsed.success) return throwError(() => invalidInput(parsed.error));
    const { throttleMs = 250, pollIntervalMs } = parsed.data;
    return defer(() => this.ports.log.liveCursor()).pipe(
      switchMap((after) =>
        this.subscribePages({
          after,
          ...(query.project === undefined ? {} : { projects: [query.project] }),
          ...definedPoll(pollIntervalMs),
        }).pipe(startWith(null)),
      ),
      throttleLatest(throttleMs),
      // Each query reads past the latest change; an older one still running is dropped.
      switchMap(() => this.ports.jobs(query)),
    );
  }
}

/** The first value at once, then the latest of each `ms` window. */
const throttleLatest = <T>(ms: number) =>
  throttleTime<T>(ms, asyncScheduler, { leading: true, trailing: true });

const definedPoll = (pollIntervalMs: number | undefined) =>
  pollIntervalMs === undefined ? {} : { pollIntervalMs };

const invalidInput = (error: z.ZodError) => new InvalidInputError(toValidationIssues(error, ''));
