export { createClient, HeadwayClient } from './client.ts';
export type { ClientAppendResult, ClientOptions, Queued } from './client-options.ts';
export type { EventsFilter, JobsFilter, TimelineEntry, TimelineFilter } from './read-calls.ts';
export type { WebhookDeliveriesFilter } from './webhook-calls.ts';
export type { Delivery, DeliveryAttempt, WebhookPayload } from '../webhooks/webhook-deliveries.ts';
export type { Webhook, WebhookCondition, WebhookInput } from '../webhooks/webhook-subscriptions.ts';
export { EventsNotStoredError } from './events-not-stored.ts';
export type { NotStoredEvent, NotStoredJob } from './events-not-stored.ts';
export {
  followEventStream,
  HttpStatusError,
  readEventStream,
  recordedEventOf,
} from './event-stream.ts';
export type { StreamMessage } from './event-stream.ts';
