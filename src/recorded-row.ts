import type { EventMetadata, JsonValue } from '../schema/events.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { upcastData } from '../schema/upcast.ts';
import type { UpcasterIndex } from '../schema/upcast.ts';

/** An `events` row as the drivers return it. */
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
  occurred_at: Date;
  recorded_at: Date;
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
    occurredAt: row.occurred_at,
    recordedAt: row.recorded_at,
  } as RecordedEvent;
}
