import { sql } from 'kysely';
import type { SelectQueryBuilder } from 'kysely';
import type { Database } from '../schema/database.ts';
import type { EventMetadata, JsonValue } from '../schema/events.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { upcastData } from '../schema/upcast.ts';
import type { UpcasterIndex } from '../schema/upcast.ts';

/** An `events` row as `selectEventColumns` reads it. */
export interface EventRow {
  position: bigint | string;
  transaction_id: string;
  stream_id: string;
  version: bigint | string | number;
  event_id: string;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: unknown;
  /** Epoch milliseconds, truncated as a `Date` would be. */
  occurred_ms: number;
  /** Epoch milliseconds, truncated as a `Date` would be. */
  recorded_ms: number;
}

/**
 * Selects the columns of a recorded event. Times come as epoch milliseconds: drivers
 * parse a float in a few nanoseconds and a timestamp string in hundreds, which is most
 * of the cost of reading a row.
 */
export function selectEventColumns<O>(query: SelectQueryBuilder<Database, 'events', O>) {
  return query.select([
    'position',
    'transaction_id',
    'stream_id',
    'version',
    'event_id',
    'type',
    'schema_version',
    'data',
    'metadata',
    sql<number>`round(extract(epoch from date_trunc('milliseconds', occurred_at)) * 1000)::float8`.as(
      'occurred_ms',
    ),
    sql<number>`round(extract(epoch from date_trunc('milliseconds', recorded_at)) * 1000)::float8`.as(
      'recorded_ms',
    ),
  ]);
}

/** Turns a row into a `RecordedEvent`, upcasting data written by older schema versions. */
export function toRecordedEvent(row: EventRow, upcasters: UpcasterIndex): RecordedEvent {
  let data = row.data as JsonValue;
  let schemaVersion = row.schema_version;
  if (upcasters.size > 0)
    ({ data, schemaVersion } = upcastData(upcasters, row.type, schemaVersion, data));
  // The log only holds validated events, so the row is trusted to match its type.
  return {
    position: BigInt(row.position),
    transactionId: BigInt(row.transaction_id),
    streamId: row.stream_id,
    version: Number(row.version),
    eventId: row.event_id,
    type: row.type,
    schemaVersion,
    data,
    metadata: row.metadata as EventMetadata,
    occurredAt: new Date(row.occurred_ms),
    recordedAt: new Date(row.recorded_ms),
  } as RecordedEvent;
}
