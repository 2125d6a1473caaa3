import { sql } from 'kysely';
import * as z from 'zod';
import { storableText } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { formatTimelineCursor, timelineCursorSchema } from '../cursors.ts';
import { escapeLike } from '../store/escape-like.ts';
import type { LogReader } from '../store/log-reads.ts';
import { selectEventColumns } from '../store/recorded-row.ts';
import { parseInput } from '../validation.ts';

const timestamp = z
  .union([z.date(), z.iso.datetime({ offset: true })])
  .transform((value) => new Date(value))
  .refine(
    (time) => time.getTime() >= limits.earliestTimeMs && time.getTime() <= limits.latestTimeMs,
    'expected a time from 0001-01-01 to 9999-12-31',
  );

/** Filters and paging of `timeline`. */
export const timelineQuerySchema = z.strictObject({
  /** One job, or all jobs when absent. */
  jobId: storableText(limits.idLength).optional(),
  /** Event types; one ending in `*` matches by prefix (`x.*`: every custom event). */
  types: z.array(storableText(limits.nameLength)).max(100).optional(),
  /** Only `log.written` events of this level. */
  level: z.enum(['debug', 'info', 'warn', 'error']).optional(),
  /** Events that occurred at or after this time. */
  since: timestamp.optional(),
  /** Events that occurred before this time. */
  until: timestamp.optional(),
  /** Case-insensitive text in messages, reasons, notes and error messages. */
  text: storableText(200).optional(),
  /** The timeline cursor (`nextCursor`) of the previous page. */
  cursor: timelineCursorSchema.optional(),
  limit: z.number().int().min(1).max(1_000).optional(),
  order: z.enum(['asc', 'desc']).optional(),
});

/** Filters and paging of `timeline`. */
export type TimelineQuery = z.input<typeof timelineQuerySchema>;

/** A page of the timeline; `nextCursor` is null on the last page. */
export interface TimelinePage {
  events: RecordedEvent[];
  nextCursor: string | null;
}

/** Reads the timeline: filtered, ordered by position, paged by cursor. */
export async function queryTimeline(log: LogReader, input: TimelineQuery): Promise<TimelinePage> {
  const {
    jobId,
    types,
    level,
    since,
    until,
    text,
    cursor,
    limit = 100,
    order = 'asc',
  } = parseInput(timelineQuerySchema, input);

  let query = selectEventColumns(log.db.selectFrom('events'));
  if (jobId !== undefined) query = query.where('stream_id', '=', jobId);
  if (types && types.length > 0) {
    const exact = types.filter((type) => !type.endsWith('*'));
    const prefixes = types.filter((type) => type.endsWith('*')).map((type) => type.slice(0, -1));
    query = query.where((eb) =>
      eb.or([
        ...(exact.length > 0 ? [eb('type', 'in', exact)] : []),
        ...prefixes.map((prefix) => eb('type', 'like', `${escapeLike(prefix)}%`)),
      ]),
    );
  }
  if (level !== undefined) {
    query = query.where('type', '=', 'log.written').where(sql<boolean>`data->>'level' = ${level}`);
  }
  if (since) query = query.where('occurred_at', '>=', since);
  if (until) query = query.where('occurred_at', '<', until);
  if (text !== undefined) {
    const pattern = `%${escapeLike(text)}%`;
    query = query.where(
      sql<boolean>`concat_ws(' ', data->>'message', data->'error'->>'message', data->>'reason', data->>'note') ilike ${pattern}`,
    );
  }
  const after = sql.raw(order === 'asc' ? '>' : '<');
  if (jobId !== undefined) {
    // One job is read by (stream_id, version): by position, a page walks the log's position
    // index from the log's start (or end) past every other job's events. A stream's versions
    // follow its positions (its appends are serialised and insert in version order), so
    // the order is the same, and a cursor becomes its event's version.
    if (cursor !== undefined) {
      query = query.where(sql<boolean>`version ${after} ${cursorVersion(jobId, cursor, order)}`);
    }
    query = query.orderBy('version', order);
  } else {
    if (cursor !== undefined) {
      query = query.where(sql<boolean>`position ${after} ${cursor}::bigint`);
    }
    query = query.orderBy('position', order);
  }
  const rows = await query.limit(limit + 1).execute();
  const page = rows.slice(0, limit).map((row) => log.toEvent(row));
  return {
    events: page,
    nextCursor: rows.length > limit ? formatTimelineCursor(page.at(-1)!.position) : null,
  };
}

/**
 * The version a timeline cursor stands for in one job: its event's, found by position (the
 * position index, one probe per partition). A cursor that is not one of the job's positions
 * stands between the job's events around it, found by a scan of the job's versions.
 */
function cursorVersion(jobId: string, cursor: string, order: 'asc' | 'desc') {
  const between =
    order === 'asc'
      ? sql`(select coalesce(max(version), 0) from events
               where stream_id = ${jobId} and position <= ${cursor}::bigint)`
      : sql`(select coalesce(min(version), ${Number.MAX_SAFE_INTEGER}::bigint) from events
               where stream_id = ${jobId} and position >= ${cursor}::bigint)`;
  return sql`coalesce(
    (select version from events where position = ${cursor}::bigint and stream_id = ${jobId}),
    ${between})`;
}
