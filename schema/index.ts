export {
  currentSchemaVersions,
  customEventType,
  defaultFailureCategories,
  eventDataSchemas,
  eventMetadata,
  eventTypes,
  failureError,
  isCustomEventType,
  isEventType,
  jsonValue,
} from './events.ts';
export type {
  CustomEventInput,
  CustomEventType,
  EventData,
  EventInput,
  EventInputEnvelope,
  EventMetadata,
  EventType,
  FailureError,
  JsonValue,
  KnownEventInput,
} from './events.ts';
export { limits } from './limits.ts';
export { isCustomEvent } from './recorded-event.ts';
export type {
  CustomRecordedEvent,
  KnownRecordedEvent,
  RecordedEnvelope,
  RecordedEvent,
  RecordedEventOf,
} from './recorded-event.ts';
export { indexUpcasters, upcastData } from './upcast.ts';
export type { Upcaster, UpcasterIndex } from './upcast.ts';
