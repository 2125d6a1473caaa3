// Talking to the server: JSON reads, downloads and Server-Sent Events, with the session's token.
import { createParser } from '/dashboard/vendor/eventsource-parser/index.js';

/** A token given once as ?token= is kept for the session and taken out of the address. */
function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given) {
    sessionStorage.setItem('headway.token', given);
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url);
  }
  return sessionStorage.getItem('headway.token');
}

const token = takeToken();

function headers(extra = {}) {
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

/** An answer other than 2xx, with the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** What a failed answer says, as an ApiError. */
async function failure(response) {
  const body = await response.json().catch(() => null);
  return new ApiError(response.status, body?.error?.message ?? `HTTP ${response.status}`);
}

/** GET a JSON route. */
export async function api(path, { signal } = {}) {
  const response = await fetch(path, { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  return response.json();
}

/** Saves what a route answers as a file, the token sent as a header (a plain link cannot). */
export async function download(path, filename) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = Object.assign(document.createElement('a'), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1_000);
}

const indicator = () => document.getElementById('connection');

/** Shows how the live connection stands: 'connecting', 'live' or 'down'. */
export function setConnection(state, text) {
  const element = indicator();
  element.dataset.state = state;
  element.textContent = text;
}

/** Statuses that will not change by retrying: the page must say so instead. */
const isFinal = (status) => status >= 400 && status < 500 && status !== 408 && status !== 429;

/**
 * Follows a Server-Sent Events route until `signal` aborts, reconnecting with
 * `Last-Event-ID` where it left off, and keeps the connection indicator current.
 * `onOpen({ recovered })` runs on each connection (recovered: after an outage);
 * `onEvent(event)` for each recorded event; `onSnapshot(data)` for the first message;
 * `onFatal(error)` when the server refuses for good (an unknown job, a bad token).
 */
export async function followStream(path, { onOpen, onEvent, onSnapshot, onFatal, signal }) {
  let lastEventId = null;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const response = await fetch(path, {
        headers: headers(lastEventId ? { 'last-event-id': lastEventId } : {}),
        signal,
      });
      if (!response.ok || !response.body) {
        const error = await failure(response);
        if (isFinal(response.status)) {
          setConnection('down', error.message);
          onFatal?.(error);
          return;
        }
        throw error;
      }
      setConnection('live', 'Live');
      await onOpen?.({ recovered: failures > 0 });
      failures = 0;
      const parser = createParser({
        onEvent(message) {
          if (message.id) lastEventId = message.id;
          if (message.event === 'snapshot') onSnapshot?.(JSON.parse(message.data));
          if (message.event === 'event') onEvent(JSON.parse(message.data));
        },
      });
      const decoder = new TextDecoder();
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      throw new Error('the stream ended');
    } catch {
      if (signal.aborted) return;
      failures += 1;
      setConnection(
        'down',
        failures > 1 ? 'Server unreachable; retrying…' : 'Connection lost; reconnecting…',
      );
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** failures)));
    }
  }
}
