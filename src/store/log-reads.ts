import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import * as z from 'zod';
import type { Database } from '../../schema/database.ts';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import type { UpcasterIndex } from '../../schema/upcast.ts';
import { streamIdSchema } from '../../schema/events.ts';
import { logStart, parseLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import { InvalidInputError } from '../errors.ts';
import { expectedIssue, parseInput } from '../validation.ts';
import { readAhead } from './read-ahead.ts';
import { selectEventColumns, toRecordedEvent } from './recorded-row.ts';
import type { EventRow } from './recorded-row.ts';

/** Options of `readAll`. */
export interface ReadAllOptions {
  /** Read events after this log cursor (default: the start). */
  after?: LogCursor | string;
  /** At most this many events (default and maximum 10,000). */
  limit?: number;
  /** Only these event types. */
  types?: readonly string[];
  /** Only these streams (job ids). */
  streamIds?: readonly string[];
  /** Only jobs of these projects (as their `job.started` named them). */
  projects?: readonly string[];
}

/** A page of the global log and the log cursor to continue from. */
export interface ReadAllPage {
  events: RecordedEvent[];
  /** The cursor after the last event returned (unchanged when none was). */
  next: LogCursor;
}

/** Options of `readStream`. */
export interface ReadStreamOptions {
  /** First version to return (default 1). */
  fromVersion?: number;
  /** At most this many events (default and maximum 10,000). */
  limit?: number;
}

const readAllSchema = z.strictObject({
  limit: z.number().int().min(1).max(limits.readPage).optional(),
  types: z.array(z.string().min(1).max(limits.nameLength)).max(100).optional(),
  streamIds: z.array(streamIdSchema).max(1_000).optional(),
  projects: z.array(z.string().min(1).max(limits.nameLength)).max(100).optional(),
});

/**
 * The gap-safe predicate: only rows of transactions older than every transaction still
 * running, so a slow commit can never land behind a reader (docs/architecture.md, "The log").
 */
export const visibleToGapSafeReaders = sql<boolean>`transaction_id < pg_snapshot_xmin(pg_current_snapshot())`;

/** Rows after a log cursor, in log order. */
const afterCursor = (cursor: LogCursor) =>
  sql<boolean>`(transaction_id, position) > (${cursor.transactionId.toString()}::xid8, ${cursor.position.toString()}::bigint)`;

/** Every read of the `events` table: one stream by version, or the whole log by cursor. */
export class LogReader {
  constructor(
    readonly db: Kysely<Database>,
    private readonly upcasters: UpcasterIndex,
  ) {}

  /** Reads one stream in version order, validating the id and the page. */
  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const id = parseInput(streamIdSchema, streamId, 'streamId');
    const fromVersion = options.fromVersion ?? 1;
    const limit = options.limit ?? limits.readPage;
    if (!Number.isSafeInteger(fromVersion) || fromVersion < 1) {
      throw new InvalidInputError([expectedIssue('fromVersion', 'a version >= 1', fromVersion)]);
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > limits.readPage) {
      throw new InvalidInputError([expectedIssue('limit', `1 to ${limits.readPage}`, limit)]);
    }
    // One round trip: the versions [from, from + limit), which is the whole page since
    // appends leave no gaps, then, should rows ever be missing (written around the API),
    // those after, so the page is still the first `limit` events from `fromVersion`. At a
    // stream's end the second part is one index probe that finds nothing.
    const page = this.streamRows(this.db, id, fromVersion, limit, true);
    const after = this.streamRows(this.db, id, fromVersion + limit, limit, false);
    const { rows } = await sql<EventRow>`
      (${page}) union all (${after}) order by version limit ${limit}`.execute(this.db);
    return rows.map((row) => this.toEvent(row));
  }

  /**
   * The events of a stream from a version, one query, through `db` (a transaction's, say):
   * for tails that are short and ids already checked.
   */
  async readStreamTail(
    db: Kysely<Database>,
    streamId: string,
    fromVersion: number,
    limit: number,
  ): Promise<RecordedEvent[]> {
    const rows = await this.streamRows(db, streamId, fromVersion, limit, false).execute();
    return rows.map((row) => this.toEvent(row));
  }

  private streamRows(
    db: Kysely<Database>,
    streamId: string,
    from: number,
    count: number,
    bounded: boolean,
  ) {
    let query = selectEventColumns(db.selectFrom('events'))
      .where('stream_id', '=', streamId)
      .where('version', '>=', from as never);
    // Without an upper bound the planner may sort the whole rest of a long stream for
    // every page.
    if (bounded) query = query.where('version', '<', (from + count) as never);
    return query.orderBy('version').limit(count);
  }

  /** One stream in pages, each next one requested while the caller works on the current. */
  readStreamPages(streamId: string, fromVersion = 1): AsyncGenerator<RecordedEvent[]> {
    const limit = limits.readPage;
    return readAhead(
      () => this.readStream(streamId, { fromVersion, limit }),
      (events) =>
        events.length < limit
          ? null
          : this.readStream(streamId, { fromVersion: events.at(-1)!.version + 1, limit }),
    );
  }

  /**
   * The log after a cursor, filtered. Gap-safe, an event shows up only once every
   * transaction that started before its own has ended, so none is ever skipped; without
   * it, every committed event shows, for callers that fold a tail once and move no cursor.
   */
  async readLog(options: ReadAllOptions, { gapSafe }: { gapSafe: boolean }): Promise<ReadAllPage> {
    const { after, ...rest } = options;
    const { limit = limits.readPage, types, streamIds, projects } = parseInput(readAllSchema, rest);
    const cursor = after === undefined ? logStart : parseLogCursor(after);
    let query = selectEventColumns(this.db.selectFrom('events'))
      .$if(gapSafe, (q) => q.where(visibleToGapSafeReaders))
      .where(afterCursor(cursor));
    if (types && types.length > 0) query = query.where('type', 'in', types);
    if (streamIds && streamIds.length > 0) query = query.where('stream_id', 'in', streamIds);
    if (projects && projects.length > 0) {
      // A job belongs to the project its first event, `job.started`, names.
      query = query.where((eb) =>
        eb.exists(
          eb
            .selectFrom('events as started')
            .select(sql`1`.as('one'))
            .whereRef('started.stream_id', '=', 'events.stream_id')
            .where('started.version', '=', 1 as never)
            .where('started.type', '=', 'job.started')
            .where(sql<boolean>`started.data->>'project' in (${sql.join(projects)})`),
        ),
      );
    }
    const rows = await query.orderBy('transaction_id').orderBy('position').limit(limit).execute();
    const events = rows.map((row) => this.toEvent(row));
    const last = events.at(-1);
    return {
      events,
      next: last ? { transactionId: last.transactionId, position: last.position } : cursor,
    };
  }

  /** Gap-safe pages of the log after a cursor until caught up, the next read while one is used. */
  async *readLogBatches(options: ReadAllOptions = {}): AsyncGenerator<ReadAllPage> {
    const after = options.after === undefined ? logStart : parseLogCursor(options.after);
    const limit = options.limit ?? limits.readPage;
    const read = (cursor: LogCursor) =>
      this.readLog({ ...options, after: cursor, limit }, { gapSafe: true });
    const pages = readAhead(
      () => read(after),
      (page) => (page.events.length < limit ? null : read(page.next)),
    );
    for await (const page of pages) if (page.events.length > 0) yield page;
  }

  /** Events after a log cursor that a gap-safe reader can see, counted up to a million. */
  async countVisibleAfter(cursor: LogCursor): Promise<{ events: number; capped: boolean }> {
    const cap = 1_000_000;
    const { rows } = await sql<{ count: string }>`
      select count(*)::text as count from (
        select 1 from events
         where ${visibleToGapSafeReaders} and ${afterCursor(cursor)}
         limit ${cap}) as lagging`.execute(this.db);
    const events = Number(rows[0]!.count);
    return { events, capped: events >= cap };
  }

  /**
   * A log cursor that every committed event before now precedes: the events after it are
   * those of transactions still running at the call, and any later.
   */
  async liveCursor(): Promise<LogCursor> {
    const { rows } = await sql<{
      xmin: string;
    }>`select pg_snapshot_xmin(pg_current_snapshot())::text as xmin`.execute(this.db);
    // Positions start at 1, so (xmin, 0) is just before the first event of xmin.
    return { transactionId: BigInt(rows[0]!.xmin), position: 0n };
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

  /** An `events` row, as `selectEventColumns` reads it, as a recorded event (upcast). */
  toEvent(row: Parameters<typeof toRecordedEvent>[0]): RecordedEvent {
    return toRecordedEvent(row, this.upcasters);
  }
}
