import * as z from 'zod';
import { isStorableText, unstorableTextMessage } from '../schema/events.ts';
import { InvalidInputError } from './errors.ts';
import { expectedIssue } from './validation.ts';

/**
 * Headway has three kinds of cursor, each with its own name and format (see "Cursors" in
 * docs/architecture.md):
 * - a **log cursor** (`"<transactionId>:<position>"`): where a gap-safe reader of the whole
 *   log stands; the `after` of `readAll`, `follow`, `subscribe`, SSE and WebSocket feeds;
 * - a **timeline cursor** (a position, `"1044"`): the `nextCursor` of a timeline page;
 * - a **jobs page cursor** (`"<updatedAt>:<jobId>"`): the `nextCursor` of a page of jobs.
 */

/** A log cursor: the last (transaction, position) pair a gap-safe reader has seen. */
export interface LogCursor {
  transactionId: bigint;
  position: bigint;
}

/** The log cursor before the first event, `"0:0"`. */
export const logStart: LogCursor = Object.freeze({ transactionId: 0n, position: 0n });

/** Formats a log cursor as `"<transactionId>:<position>"`. */
export function formatLogCursor(cursor: LogCursor): string {
  return `${cursor.transactionId}:${cursor.position}`;
}

/** The shape of a log cursor's text. */
export const logCursorPattern = /^\d{1,20}:\d{1,20}$/;

/** The largest transaction id (`xid8`, unsigned) and position (`bigint`) the log can hold. */
const maxTransactionId = 2n ** 64n - 1n;
const maxPosition = 2n ** 63n - 1n;

/** Parses `"<transactionId>:<position>"`, or passes a `LogCursor` through. */
export function parseLogCursor(value: string | LogCursor): LogCursor {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  const [transactionId, position] = text.split(':');
  // Past the column types, PostgreSQL refuses the number (bigint) or wraps it (xid8).
  const cursor = logCursorPattern.test(text) && {
    transactionId: BigInt(transactionId!),
    position: BigInt(position!),
  };
  if (!cursor || cursor.transactionId > maxTransactionId || cursor.position > maxPosition) {
    throw new InvalidInputError([
      {
        path: 'after',
        message: `expected a cursor "<transactionId>:<position>" such as "812:1044", with a transaction id below 2^64 and a position below 2^63, received ${JSON.stringify(value)}`,
      },
    ]);
  }
  return cursor;
}

/** Orders log cursors as the log does: by transaction, then position. */
export function compareLogCursors(a: LogCursor, b: LogCursor): number {
  if (a.transactionId !== b.transactionId) return a.transactionId < b.transactionId ? -1 : 1;
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  return 0;
}

/** A log cursor as HTTP takes it: `"<transactionId>:<position>"`. */
export const logCursorText = z
  .string()
  .max(41)
  .regex(logCursorPattern, 'expected a cursor "<transactionId>:<position>" such as "812:1044"');

/** A timeline cursor: the position of the last event of the previous page, as text. */
export const timelineCursorSchema = z
  .string()
  .regex(/^\d{1,20}$/, 'expected the nextCursor of a previous page')
  // Past a bigint, PostgreSQL refuses the number.
  .refine(
    (cursor) => !/^\d+$/.test(cursor) || BigInt(cursor) <= maxPosition,
    'expected the nextCursor of a previous page',
  );

/** The timeline cursor after an event at `position`. */
export function formatTimelineCursor(position: bigint): string {
  return position.toString();
}

/** A jobs page cursor: the update time and id of the last job of the previous page. */
export interface JobsPageCursor {
  updatedAt: number;
  jobId: string;
}

const jobsPageCursorPattern = /^(\d{1,16}):(.+)$/;

/** A jobs page cursor as text, checked for its shape (`parseJobsPageCursor` reads it). */
export const jobsPageCursorSchema = (maxIdLength: number) =>
  z
    .string()
    .max(maxIdLength + 20)
    .regex(
      jobsPageCursorPattern,
      'expected the cursor of a previous page, such as 1795446738868:job-1',
    )
    // A job id PostgreSQL cannot store names no job: refused here, not by the database.
    .refine(isStorableText, unstorableTextMessage);

/**
 * Where a page of jobs ended, for the next page's `after`: the last job's update time and id.
 *
 * @example
 * const next = await ledger.jobs({ limit: 50, after: formatJobsPageCursor(page.at(-1)!) });
 */
export function formatJobsPageCursor(job: {
  jobId: string;
  progress: { updatedAt: number | null };
}): string {
  return `${job.progress.updatedAt ?? 0}:${job.jobId}`;
}

/** Reads `"<updatedAt>:<jobId>"`; throws `InvalidInputError` for anything else. */
export function parseJobsPageCursor(text: string): JobsPageCursor {
  const match = jobsPageCursorPattern.exec(text);
  if (!match || !isStorableText(text)) {
    throw new InvalidInputError([
      expectedIssue('after', 'a jobs page cursor such as "1795446738868:job-1"', text),
    ]);
  }
  return { updatedAt: Number(match[1]), jobId: match[2]! };
}
