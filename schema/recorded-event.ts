import type { CustomEventType, EventData, EventMetadata, EventType, JsonValue } from './events.ts';

/** Envelope fields the log stores with every event (docs/architecture.md, "The log"). */
export interface RecordedEnvelope {
  /** Global position, assigned by the log. */
  position: bigint;
  /** The writing transaction (xid8); with `position`, the gap-safe read cursor. */
  transactionId: bigint;
  /** The job id. */
  streamId: string;
  /** 1-based version within the stream. */
  version: number;
  /** The idempotency key. */
  eventId: string;
  schemaVersion: number;
  metadata: EventMetadata;
  /** The producer's clock. */
  occurredAt: Date;
  /** The database clock. */
  recordedAt: Date;
}

/** A catalogued event as read back from the log, discriminated by `type`. */
export type KnownRecordedEvent = {
  [T in EventType]: RecordedEnvelope & { type: T; data: EventData<T> };
}[EventType];

/** A producer's own `x.*` event as read back from the log. */
export type CustomRecordedEvent = RecordedEnvelope & { type: CustomEventType; data: JsonValue };

/** Any event read back from the log. */
export type RecordedEvent = KnownRecordedEvent | CustomRecordedEvent;

/** A recorded event of one catalogued type. */
export type RecordedEventOf<T extends EventType> = Extract<KnownRecordedEvent, { type: T }>;

/** True for `x.*` events, which reducers ignore. Narrows the rest to the catalogue. */
export function isCustomEvent(event: RecordedEvent): event is CustomRecordedEvent {
  return event.type.startsWith('x.');
}

/** A `condition.raised` or `condition.cleared` event: the server's record of a condition. */
export type ConditionRecordedEvent = RecordedEventOf<'condition.raised' | 'condition.cleared'>;

/** True for `condition.*` events, which move no count, time or rate of the job. */
export function isConditionEvent(event: RecordedEvent): event is ConditionRecordedEvent {
  return event.type === 'condition.raised' || event.type === 'condition.cleared';
}
