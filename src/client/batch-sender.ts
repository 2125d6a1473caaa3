import type { EventInput } from '../../schema/events.ts';
import { reconnectDelayMs, sleep } from '../backoff.ts';
import type { ExpectedVersion } from '../errors.ts';
// Pure validation (zod and the catalogue): the client must not load a database driver.
import { prepareStreams } from '../append/prepare-streams.ts';
import { HttpStatusError } from './event-stream.ts';
import type { ClientHttp } from './http.ts';
import { isTransientFailure, mayHaveBeenStored } from './send-failures.ts';

/** Told of each failed attempt (`retrying: true`) and each batch given up (`retrying: false`). */
export type ClientErrorListener = (
  error: Error,
  context: { jobId: string; events: number; retrying: boolean },
) => void;

/**
 * A batch given up: the last error, whether retries ran out or it was no use, and
 * whether an attempt may have reached the server and been stored all the same.
 */
export class BatchGivenUp extends Error {
  constructor(
    readonly failure: Error,
    readonly attempts: number,
    readonly retriesExhausted: boolean,
    readonly maybeStored: boolean,
  ) {
    super(failure.message, { cause: failure });
  }

  /** Any error of a send as a `BatchGivenUp`: one attempt, final, not stored. */
  static of(error: unknown): BatchGivenUp {
    return error instanceof BatchGivenUp
      ? error
      : new BatchGivenUp(
          error instanceof Error ? error : new Error(String(error)),
          1,
          false,
          false,
        );
  }
}

/** How long a batch is retried and who hears of each failed attempt. */
export interface RetryOptions {
  giveUpAfterMs: number;
  onError?: ClientErrorListener | undefined;
}

/**
 * Posts one batch, again on transient failures (network, timeout, 408, 429, 5xx) with
 * the same ids, for up to `giveUpAfterMs`: backoff with jitter, or the server's
 * `Retry-After`. Resolves to the job's version; throws `BatchGivenUp` when retries run
 * out or the answer is final.
 */
export async function sendBatch(
  http: ClientHttp,
  jobId: string,
  events: EventInput[],
  expectedVersion: ExpectedVersion,
  retry: RetryOptions,
): Promise<number> {
  const path = `/v1/jobs/${encodeURIComponent(jobId)}/events`;
  // Serialised once: every attempt sends the very same body, ids included.
  const body = JSON.stringify(expectedVersion === 'any' ? { events } : { events, expectedVersion });
  const giveUpAt = Date.now() + retry.giveUpAfterMs;
  let maybeStored = false;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return (await http.request<{ version: number }>('POST', path, body)).version;
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      maybeStored ||= mayHaveBeenStored(failure);
      if (!isTransientFailure(failure)) {
        throw new BatchGivenUp(failure, attempt, false, maybeStored);
      }
      const left = giveUpAt - Date.now();
      if (left <= 0) throw new BatchGivenUp(failure, attempt, true, maybeStored);
      retry.onError?.(failure, { jobId, events: events.length, retrying: true });
      const retryAfter = failure instanceof HttpStatusError ? failure.retryAfterMs : null;
      // The last try comes at the bound at the latest, even after a longer Retry-After.
      await sleep(Math.min(retryAfter ?? reconnectDelayMs(attempt - 1), left));
    }
  }
}

/**
 * Fixes each event's id and time now, so a retry repeats the same events, and runs the
 * server's own validation, so a bad call fails in the caller's hands.
 */
export function stampAndCheck(jobId: string, events: readonly EventInput[]): EventInput[] {
  const now = new Date();
  const stamped = events.map((event) => ({
    ...event,
    eventId: event.eventId ?? crypto.randomUUID(),
    occurredAt: event.occurredAt ?? now,
  })) as EventInput[];
  prepareStreams([{ streamId: jobId, events: stamped }], now);
  return stamped;
}
