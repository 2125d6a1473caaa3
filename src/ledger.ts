import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../schema/database.ts';
import type { EventInput } from '../schema/events.ts';
import { limits } from '../schema/limits.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { UpcasterIndex } from '../schema/upcast.ts';
import { accumulatorFor } from '../projections/projection.ts';
import type { Projection } from '../projections/projection.ts';
import { executeAppend, prepareStreams, streamIdSchema } from './append-statement.ts';
import type { AppendResult, StreamAppend } from './append-statement.ts';
import { parseCursor, startCursor } from './cursor.ts';
import { readAhead } from './read-ahead.ts';
import type { Cursor } from './cursor.ts';
import { InvalidInputError, type ExpectedVersion } from './errors.ts';
import { JobRecorder } from './job-recorder.ts';
import type { JobRecorderOptions } from './job-recorder.ts';
import { toValidationIssues } from './prepare-events.ts';
import { selectEventColumns, toRecordedEvent } from './recorded-row.ts';
import { listJobs, type JobListing, type ListJobsOptions } from './list-jobs.ts';
import { queryTimeline, type TimelinePage, type TimelineQuery } from './timeline-query.ts';

/** Options of `readAll`. */
export interface ReadAllOptions {
  /** Read events after this cursor (default: the start). */
  after?: Cursor | string;
  /** At most this many events (default and maximum 10,000). */
  limit?: number;
  /** Only these event types. */
  types?: readonly string[];
  /** Only these streams (job ids). */
  streamIds?: readonly string[];
}

/** A page of the global log and the cursor to continue from. */
export interface ReadAllPage {
  events: RecordedEvent[];
  /** The cursor after the last event returned (unchanged when none was). */
  next: Cursor;
}

/** Options of `readStream`. */
export interface ReadStreamOptions {
  /** First version to return (default 1). */
  fromVersion?: number;
  /** At most this many events (default and maximum 10,000). */
  limit?: number;
}

/** What `replay` reports when it has caught up. */
export interface ReplayResult<S> {
  state: S;
  /** Continue a later replay from here. */
  cursor: Cursor;
  events: number;
  elapsedMs: number;
  eventsPerSecond: number;
}

/** Where the ledger keeps its log. */
export interface LedgerLocation {
  store: 'postgres' | 'pglite';
  /** A redacted URL for PostgreSQL, the data folder (or `memory://`) for PGlite. */
  description: string;
}

const readAllSchema = z.strictObject({
  limit: z.number().int().min(1).max(limits.readPage).optional(),
  types: z.array(z.string().min(1).max(limits.nameLength)).max(100).optional(),
  streamIds: z.array(streamIdSchema).max(1_000).optional(),
});

/**
 * The progress ledger: an append-only event log with gap-safe reads, replays and
 * per-job recording handles. Open one with `openLedger`.
 *
 * @example
 * const ledger = await openLedger();
 * await ledger.append('job-1', [{ type: 'job.started', data: { name: 'crawl', kind: 'crawl', project: 'web' } }]);
 * const progress = await ledger.project('job-1', jobProgress);
 */
export class Ledger {
  constructor(
    /** The Kysely instance over the log; for queries the ledger does not offer yet. */
    readonly db: Kysely<Database>,
    readonly location: LedgerLocation,
    private readonly upcasters: UpcasterIndex,
    private readonly onClose: () => Promise<void>,
  ) {}

  /**
   * Appends events to one stream, atomically, in one round trip. Re-appending the same
   * event ids returns the original positions and writes nothing.
   *
   * @example
   * await ledger.append('job-1', [{ type: 'item.completed', data: { itemId: 'a' } }], { expectedVersion: 3 });
   */
  async append(
    streamId: string,
    events: readonly EventInput[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const [result] = await this.appendMany([
      { streamId, events, ...(options.expectedVersion === undefined ? {} : options) },
    ]);
    return result!;
  }

  /** Appends to several streams in one transaction: all of them, or none. */
  async appendMany(streams: readonly StreamAppend[]): Promise<AppendResult[]> {
    const prepared = prepareStreams(streams, new Date());
    return executeAppend(this.db, prepared);
  }

  /** Reads one stream in version order. */
  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const id = streamIdSchema.safeParse(streamId);
    if (!id.success) throw new InvalidInputError(toValidationIssues(id.error, 'streamId'));
    const fromVersion = options.fromVersion ?? 1;
    const limit = options.limit ?? limits.readPage;
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
      throw invalid('fromVersion', 'a version >= 1', fromVersion);
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > limits.readPage) {
      throw invalid('limit', `1 to ${limits.readPage}`, limit);
    }
    const page = (from: number, count: number, bounded: boolean) => {
      let query = selectEventColumns(this.db.selectFrom('events'))
        .where('stream_id', '=', id.data)
        .where('version', '>=', from as never);
      // Without an upper bound the planner may sort the whole rest of a long stream
      // for every page.
      if (bounded) query = query.where('version', '<', (from + count) as never);
      return query.orderBy('version').limit(count).execute();
    };
    const rows = await page(fromVersion, limit, true);
    if (rows.length < limit) {
      // Versions have no gaps, so at a stream's end this finds nothing; were rows ever
      // missing, it still returns the first `limit` events from `fromVersion`.
      rows.push(...(await page(fromVersion + limit, limit - rows.length, false)));
    }
    return rows.map((row) => toRecordedEvent(row, this.upcasters));
  }

  /**
   * Reads the whole log after a cursor, gap-safe: an event shows up only once every
   * transaction that started before its own has ended, so none is ever skipped.
   */
  async readAll(options: ReadAllOptions = {}): Promise<ReadAllPage> {
    const { after, ...rest } = options;
    const parsed = readAllSchema.safeParse(rest);
    if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, ''));
    const cursor = after === undefined ? startCursor : parseCursor(after);
    const { limit = limits.readPage, types, streamIds } = parsed.data;
    let query = selectEventColumns(this.db.selectFrom('events'))
      .where(sql<boolean>`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`)
      .where(
        sql<boolean>`(transaction_id, position) > (${cursor.transactionId.toString()}::xid8, ${cursor.position.toString()}::bigint)`,
      );
    if (types && types.length > 0) query = query.where('type', 'in', types);
    if (streamIds && streamIds.length > 0) query = query.where('stream_id', 'in', streamIds);
    const rows = await query.orderBy('transaction_id').orderBy('position').limit(limit).execute();
    const events = rows.map((row) => toRecordedEvent(row, this.upcasters));
    const last = events.at(-1);
    return {
      events,
      next: last ? { transactionId: last.transactionId, position: last.position } : cursor,
    };
  }

  /**
   * Pages through the log after a cursor until it has caught up, one batch at a time,
   * so a replay never holds the whole log in memory.
   */
  async *readAllBatches(options: ReadAllOptions = {}): AsyncGenerator<ReadAllPage> {
    const after = options.after === undefined ? startCursor : parseCursor(options.after);
    const limit = options.limit ?? limits.readPage;
    const pages = readAhead(
      () => this.readAll({ ...options, after, limit }),
      (page) =>
        page.events.length < limit ? null : this.readAll({ ...options, after: page.next, limit }),
    );
    for await (const page of pages) if (page.events.length > 0) yield page;
  }

  /** Folds one job's events through a projection. */
  async project<S>(jobId: string, projection: Projection<S>): Promise<S> {
    const accumulator = accumulatorFor(projection);
    for await (const events of this.readStreamPages(jobId)) {
      for (const event of events) accumulator.add(event);
    }
    return accumulator.result();
  }

  /** One stream in pages, each next one requested while the caller works on the current. */
  private readStreamPages(streamId: string): AsyncGenerator<RecordedEvent[]> {
    const limit = limits.readPage;
    return readAhead(
      () => this.readStream(streamId, { limit }),
      (events) =>
        events.length < limit
          ? null
          : this.readStream(streamId, { fromVersion: events.at(-1)!.version + 1, limit }),
    );
  }

  /**
   * Streams the whole log (or what follows `after`) through a projection in batches,
   * with memory bounded by the batch size and the projection's own state.
   */
  async replay<S>(
    projection: Projection<S>,
    options: { after?: Cursor | string; state?: S; batchSize?: number } = {},
  ): Promise<ReplayResult<S>> {
    const started = performance.now();
    const accumulator = accumulatorFor(projection, options.state ?? projection.initial());
    let cursor = options.after === undefined ? startCursor : parseCursor(options.after);
    let count = 0;
    for await (const page of this.readAllBatches({
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

  /** One job's or all jobs' events, filtered and paged, for audits and screens. */
  timeline(query: TimelineQuery = {}): Promise<TimelinePage> {
    return queryTimeline(this.db, this.upcasters, query);
  }

  /** Jobs in the log, newest first, with their status. */
  listJobs(options: ListJobsOptions = {}): Promise<JobListing[]> {
    return listJobs(this.db, options);
  }

  /** The head version of a stream; 0 when it does not exist. */
  async streamVersion(streamId: string): Promise<number> {
    const row = await this.db
      .selectFrom('streams')
      .select('version')
      .where('stream_id', '=', streamId)
      .executeTakeFirst();
    return row ? Number(row.version) : 0;
  }

  /**
   * A recording handle for one job; a new id is generated when none is given.
   *
   * @example
   * const job = ledger.job();
   * await job.start({ name: 'nightly crawl', kind: 'crawl', project: 'web', total: 100 });
   * await job.itemCompleted('page-1', { durationMs: 120 });
   */
  job(jobId?: string, options?: JobRecorderOptions): JobRecorder {
    return new JobRecorder(this, jobId, options);
  }

  /** Closes the connections (and, for PGlite, the data folder lock). */
  close(): Promise<void> {
    return this.onClose();
  }
}

function invalid(path: string, expected: string, received: unknown): InvalidInputError {
  return new InvalidInputError([
    { path, message: `expected ${expected}, received ${JSON.stringify(received)}` },
  ]);
}
