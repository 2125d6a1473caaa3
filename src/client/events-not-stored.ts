import type { ClientErrorCode } from '../errors.ts';
import type { EventInput } from '../../schema/events.ts';

/** One event the client gave up on, with its id and time as they were (and would be) sent. */
export interface NotStoredEvent {
  eventId: string;
  type: string;
  /**
   * False for the events of the batch that failed; true for the job's later events, which
   * were never sent so that they could not land out of order past the failure.
   */
  heldBack: boolean;
  /** The event as stamped: appending it again (same id) stores it at most once. */
  event: EventInput;
}

/**
 * A job whose events were not stored, and why: the last answer of its failed batch. The
 * events held back behind it were never sent; those of the failed batch were not stored
 * unless `maybeStored` says an attempt's outcome is unknown.
 */
export interface NotStoredJob {
  jobId: string;
  /** In recording order: the failed batch first, then the events held back behind it. */
  events: NotStoredEvent[];
  /** The HTTP status of the last answer; null when none came (network error, timeout). */
  status: number | null;
  /** The server's error code (`invalid_event`, `idempotency_conflict`, …), a network
   * error code (`ECONNREFUSED`, …) or `timeout`; null when unknown. */
  code: string | null;
  message: string;
  /** Requests made for the failed batch. */
  attempts: number;
  /** True when retries ran out (`giveUpAfterMs`); false for an answer not worth retrying. */
  retriesExhausted: boolean;
  /**
   * True when an attempt of the failed batch may have been stored all the same (its
   * answer was lost, timed out or was a 5xx), so its events are not known to be missing:
   * appending them again with the same ids stores each at most once. False when every
   * attempt was refused (a 4xx, a refused connection), so none of them is stored.
   */
  maybeStored: boolean;
  /** The last error itself. */
  error: Error;
}

/**
 * `flush()` or `close()` of a Headway client: some events were given up and are not stored.
 * `jobs` says, per job, which events (ids and types) and why; each such event is reported
 * by one `flush()` or `close()` only.
 *
 * @example
 * try {
 *   await client.close();
 * } catch (error) {
 *   if (!(error instanceof EventsNotStoredError)) throw error;
 *   for (const job of error.jobs) console.error(job.jobId, job.status, job.code, job.eventIds);
 * }
 */
export class EventsNotStoredError extends Error {
  readonly code: ClientErrorCode = 'events_not_stored';
  /** Every event id not stored, across jobs. */
  readonly eventIds: readonly string[];

  constructor(readonly jobs: readonly NotStoredJob[]) {
    const eventIds = jobs.flatMap((job) => job.events.map((event) => event.eventId));
    const shown = jobs.slice(0, 5).map(describeJob);
    if (jobs.length > shown.length) shown.push(`and ${jobs.length - shown.length} more jobs`);
    super(
      `${eventIds.length} event${eventIds.length === 1 ? '' : 's'} of ${jobs.length} job${jobs.length === 1 ? '' : 's'} not stored: ${shown.join('; ')}`,
    );
    this.name = 'EventsNotStoredError';
    this.eventIds = eventIds;
  }
}

function describeJob(job: NotStoredJob): string {
  const held = job.events.filter((event) => event.heldBack).length;
  const why = job.retriesExhausted
    ? `given up after ${job.attempts} attempts, the last: ${job.message}`
    : `not retried: ${job.message}`;
  const failed = job.events.length - held;
  const batch =
    failed > 0 ? `${failed} in the failed batch${job.maybeStored ? ' (maybe stored)' : ''}` : '';
  const behind = held > 0 ? `${held} held back${failed > 0 ? ' behind it' : ''}` : '';
  return `job '${job.jobId}': ${[batch, behind].filter(Boolean).join(' and ')} (${why})`;
}

/** An event as reported not stored; `heldBack` when it was never sent (see `NotStoredEvent`). */
export function notStoredEvent(event: EventInput, heldBack: boolean): NotStoredEvent {
  return { eventId: event.eventId!, type: event.type, heldBack, event };
}
