import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { compareLogCursors, formatLogCursor, logStart } from '../cursors.ts';
import {
  ConcurrencyError,
  HeadwayError,
  IdempotencyConflictError,
  JobNotStartedError,
} from '../errors.ts';
import type { AppendResult, PreparedStream } from './prepare-streams.ts';

const expectedCode = { any: -1, no_stream: -2, stream_exists: -3 } as const;

interface AppendRow {
  out_stream_id: string;
  out_event_id: string;
  out_position: bigint | string;
  out_version: bigint | string | number;
  out_transaction_id: bigint | string;
  /** Only when counting: whether this statement wrote the row. */
  out_written?: boolean;
}

/** Runs `headway_append` for already prepared streams: one statement, one round trip. */
export async function executeAppend(
  db: Kysely<Database>,
  streams: readonly PreparedStream[],
): Promise<AppendResult[]> {
  return (await runAppend(db, streams, false)).results;
}

/** What an append did: where each event is, and how many of them this call wrote. */
export interface AppendOutcome {
  results: AppendResult[];
  /** Events this call stored; the others were there already (an idempotent retry). */
  written: number;
}

/**
 * `executeAppend` that also tells how many events it wrote, against how many were
 * stored before (an import run twice writes nothing the second time).
 */
export async function executeAppendCounting(
  db: Kysely<Database>,
  streams: readonly PreparedStream[],
): Promise<AppendOutcome> {
  return runAppend(db, streams, true);
}

async function runAppend(
  db: Kysely<Database>,
  streams: readonly PreparedStream[],
  countWritten: boolean,
): Promise<AppendOutcome> {
  const streamIds: string[] = [];
  const expected: number[] = [];
  const eventStreams: number[] = [];
  const eventIds: string[] = [];
  const types: string[] = [];
  const schemaVersions: number[] = [];
  const data: string[] = [];
  const metadata: string[] = [];
  const occurredAt: string[] = [];
  streams.forEach((stream, index) => {
    streamIds.push(stream.streamId);
    expected.push(
      typeof stream.expectedVersion === 'number'
        ? stream.expectedVersion
        : expectedCode[stream.expectedVersion],
    );
    for (const event of stream.events) {
      eventStreams.push(index + 1);
      eventIds.push(event.eventId);
      types.push(event.type);
      schemaVersions.push(event.schemaVersion);
      data.push(event.data);
      metadata.push(event.metadata);
      occurredAt.push(event.occurredAt.toISOString());
    }
  });

  // A row this statement wrote carries this transaction's id; a retried one an older id.
  const written = countWritten
    ? sql`, coalesce(out_transaction_id = pg_current_xact_id_if_assigned(), false) as out_written`
    : sql``;
  let rows: AppendRow[];
  try {
    const result = await sql<AppendRow>`
      select out_stream_id, out_event_id, out_position, out_version, out_transaction_id${written}
        from headway_append(${streamIds}::text[], ${expected}::bigint[],
                            ${eventStreams}::int[], ${eventIds}::uuid[], ${types}::text[],
                            ${schemaVersions}::int[], ${jsonArray(data)}::jsonb,
                            ${jsonArray(metadata)}::jsonb,
                            ${occurredAt}::timestamptz[])`.execute(db);
    rows = result.rows;
  } catch (error) {
    throw translateAppendError(error, streams);
  }

  const byEventId = new Map(rows.map((row) => [row.out_event_id, row]));
  const results = streams.map((stream) => {
    let head = 0;
    let cursor = logStart;
    const events = stream.events.map((event) => {
      const row = byEventId.get(event.eventId);
      if (!row) throw new Error(`append returned no row for event ${event.eventId}`);
      const version = Number(row.out_version);
      head = Math.max(head, version);
      const at = {
        transactionId: BigInt(row.out_transaction_id),
        position: BigInt(row.out_position),
      };
      if (compareLogCursors(at, cursor) > 0) cursor = at;
      return { eventId: event.eventId, position: at.position, version };
    });
    return {
      streamId: stream.streamId,
      nextExpectedVersion: head,
      cursor: formatLogCursor(cursor),
      events,
    };
  });
  return { results, written: rows.filter((row) => row.out_written === true).length };
}

/**
 * One JSON array of already serialised values: joining costs nothing, where an array
 * literal (`jsonb[]`) must escape every quote in every value.
 */
function jsonArray(values: readonly string[]): string {
  return `[${values.join(',')}]`;
}

/** Maps the SQLSTATEs raised by `headway_append` to typed errors. */
function translateAppendError(error: unknown, streams: readonly PreparedStream[]): unknown {
  const code = (error as { code?: unknown }).code;
  if (code === 'HW007') {
    // A job retention archived: its events live in an archive now (src/retention/).
    const { streamId } = JSON.parse(detailText(error)) as { streamId?: string };
    return new HeadwayError(
      'job_finished',
      `Job '${streamId ?? '?'}' is archived: expected a job that takes events, received one whose events were exported and dropped by retention; start a new job`,
    );
  }
  if (code !== 'HW001' && code !== 'HW002' && code !== 'HW005' && code !== 'HW006') return error;
  const detail = JSON.parse(detailText(error)) as {
    streamId?: string | null;
    received?: string | null;
    actual?: number;
    repeated?: number;
    events?: number;
    eventIds?: unknown;
    fields?: unknown;
  };
  if (code === 'HW001') {
    const stream = streams.find((candidate) => candidate.streamId === detail.streamId);
    return new ConcurrencyError(
      detail.streamId ?? '?',
      stream?.expectedVersion ?? 'any',
      Number(detail.actual ?? 0),
    );
  }
  if (code === 'HW006') {
    return new JobNotStartedError(
      detail.streamId ?? '?',
      detail.received ?? null,
      streams.length > 1
        ? 'appendMany stores all of its streams or none, so nothing of this call was stored'
        : undefined,
    );
  }
  // HW002: a batch partly repeats an earlier one; HW005: a retry with other content.
  return new IdempotencyConflictError(
    detail.streamId ?? null,
    Number(detail.repeated ?? 0),
    Number(detail.events ?? 0),
    stringsOf(detail.eventIds),
    code === 'HW005' ? stringsOf(detail.fields) : [],
  );
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item) => typeof item === 'string') : [];
}

function detailText(error: unknown): string {
  const detail = (error as { detail?: unknown }).detail;
  return typeof detail === 'string' ? detail : '{}';
}
