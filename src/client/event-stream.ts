import { createParser } from 'eventsource-parser';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { reconnectDelayMs, sleep } from '../backoff.ts';

/** One Server-Sent Events message, its data parsed as JSON. */
export interface StreamMessage {
  /** `snapshot` or `event` from Headway. */
  event: string;
  /** The cursor of an `event` message: send it back as `Last-Event-ID` to resume. */
  id: string | undefined;
  data: unknown;
}

/** An HTTP answer other than 2xx, with the server's error body when it sent one. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly retryAfterMs: number | null,
  ) {
    const message =
      (body as { error?: { message?: string } } | null)?.error?.message ?? `HTTP ${status}`;
    super(`HTTP ${status}: ${message}`);
  }
}

/** Reads an error answer into an `HttpStatusError`. */
export async function statusError(response: Response): Promise<HttpStatusError> {
  const text = await response.text().catch(() => '');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text.
  }
  return new HttpStatusError(
    response.status,
    body,
    retryAfterMs(response.headers.get('retry-after')),
  );
}

/** `Retry-After` in ms: delay-seconds or an HTTP date; null when absent, zero or unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (header === null || header.trim() === '') return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return seconds > 0 ? seconds * 1_000 : null;
  const at = Date.parse(header);
  if (Number.isNaN(at)) return null;
  const wait = at - Date.now();
  return wait > 0 ? wait : null;
}

/**
 * Reads one Server-Sent Events response until it ends or `signal` aborts. No reconnects:
 * `followEventStream` does those.
 *
 * @example
 * for await (const message of readEventStream(`${url}/v1/jobs/${id}/stream`, { token })) show(message);
 */
export async function* readEventStream(
  url: string,
  options: { token?: string; lastEventId?: string; signal?: AbortSignal } = {},
): AsyncGenerator<StreamMessage> {
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  const response = await fetch(url, {
    headers,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!response.ok || !response.body) throw await statusError(response);
  const ready: StreamMessage[] = [];
  const parser = createParser({
    onEvent: (message) =>
      ready.push({
        event: message.event ?? 'message',
        id: message.id,
        data: JSON.parse(message.data) as unknown,
      }),
  });
  const decoder = new TextDecoder();
  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
      while (ready.length > 0) yield ready.shift()!;
    }
  } catch (error) {
    // The caller's abort ends the stream; anything else is a dropped connection.
    if (options.signal?.aborted) return;
    throw error;
  }
}

/**
 * Follows an event stream across dropped connections: on a network error, a 429 or a 5xx
 * it reconnects (backoff with jitter, or the server's Retry-After) with the last id it
 * saw, so no event is lost or repeated. Other answers (401, 404, …) end it with an error.
 */
export async function* followEventStream(
  url: string,
  options: { token?: string; lastEventId?: string; signal?: AbortSignal } = {},
): AsyncGenerator<StreamMessage> {
  let lastEventId = options.lastEventId;
  let failures = 0;
  while (!options.signal?.aborted) {
    try {
      for await (const message of readEventStream(url, {
        ...options,
        ...(lastEventId ? { lastEventId } : {}),
      })) {
        failures = 0;
        if (message.id) lastEventId = message.id;
        yield message;
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      const retryable =
        !(error instanceof HttpStatusError) || error.status === 429 || error.status >= 500;
      if (!retryable) throw error;
      const waitMs =
        error instanceof HttpStatusError && error.retryAfterMs !== null
          ? error.retryAfterMs
          : reconnectDelayMs(failures);
      failures += 1;
      await sleep(waitMs, options.signal);
      continue;
    }
    // The server ended the stream (it is shutting down): reconnect shortly.
    await sleep(reconnectDelayMs(failures++), options.signal);
  }
}

/** An event as the server sends it (positions as strings, times as ISO text), typed again. */
export function recordedEventOf(data: unknown): RecordedEvent {
  const wire = data as Omit<
    RecordedEvent,
    'position' | 'transactionId' | 'occurredAt' | 'recordedAt'
  > & {
    position: string;
    transactionId: string;
    occurredAt: string;
    recordedAt: string;
    cursor?: string;
  };
  const { cursor: _cursor, ...event } = wire;
  return {
    ...event,
    position: BigInt(wire.position),
    transactionId: BigInt(wire.transactionId),
    occurredAt: new Date(wire.occurredAt),
    recordedAt: new Date(wire.recordedAt),
  } as RecordedEvent;
}
