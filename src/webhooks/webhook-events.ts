import type { RecordedEvent } from '../../schema/recorded-event.ts';
import type { WebhookCondition } from './webhook-subscriptions.ts';

// Which log events a webhook notifies of: a job's ending, and the condition records.

/** The event types that can call for a webhook. */
export const webhookEventTypes = [
  'job.completed',
  'job.failed',
  'job.cancelled',
  'condition.raised',
  'condition.cleared',
] as const;

/**
 * The webhook condition an event is, or null when it is none: a job's ending, a raised
 * condition, or a stalled job's recovery (a cleared stall).
 *
 * @example
 * webhookConditionOf(event); // 'stalled' for a condition.raised of a stall
 */
export function webhookConditionOf(event: RecordedEvent): WebhookCondition | null {
  switch (event.type) {
    case 'job.completed':
      return 'finished';
    case 'job.failed':
      return 'failed';
    case 'job.cancelled':
      return 'cancelled';
    case 'condition.raised':
      return event.data.condition;
    case 'condition.cleared':
      // A cleared at-risk, late or failure rate is no news worth a call; a recovery is.
      return event.data.condition === 'stalled' ? 'recovered' : null;
    default:
      return null;
  }
}
