import { InvalidInputError } from './errors.ts';

/**
 * Where a gap-safe reader of the whole log stands: the last (transaction, position) pair
 * it has seen. Written as `"<transactionId>:<position>"`; `"0:0"` is the start.
 */
export interface Cursor {
  transactionId: bigint;
  position: bigint;
}

/** The cursor before the first event. */
export const startCursor: Cursor = Object.freeze({ transactionId: 0n, position: 0n });

/** Formats a cursor as `"<transactionId>:<position>"`. */
export function formatCursor(cursor: Cursor): string {
  return `${cursor.transactionId}:${cursor.position}`;
}

/** The largest transaction id (`xid8`, unsigned) and position (`bigint`) the log can hold. */
const maxTransactionId = 2n ** 64n - 1n;
const maxPosition = 2n ** 63n - 1n;

/** Parses `"<transactionId>:<position>"`, or passes a `Cursor` through. */
export function parseCursor(value: string | Cursor): Cursor {
  if (typeof value !== 'string') return value;
  const match = /^(\d{1,20}):(\d{1,20})$/.exec(value.trim());
  // Past the column types, PostgreSQL refuses the number (bigint) or wraps it (xid8).
  const cursor = match && { transactionId: BigInt(match[1]!), position: BigInt(match[2]!) };
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

/** Orders cursors as the log does: by transaction, then position. */
export function compareCursors(a: Cursor, b: Cursor): number {
  if (a.transactionId !== b.transactionId) return a.transactionId < b.transactionId ? -1 : 1;
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  return 0;
}
