import { HttpStatusError } from './event-stream.ts';

// How the client reads a failed request: worth a retry or not, maybe stored or not, and
// what an `EventsNotStoredError` says about it.

/**
 * Worth sending again: 408, 429 and every 5xx (the append may or may not have been
 * stored; a retry with the same ids lands it once), a timeout, a network error. Any
 * other answer (400, 401, 403, 404 such as `job_not_started`, 409 `concurrency` /
 * `idempotency_conflict`, 413) is final.
 */
export function isTransientFailure(error: Error): boolean {
  if (error instanceof HttpStatusError) {
    return error.status === 408 || error.status === 429 || error.status >= 500;
  }
  if (error.name === 'TimeoutError') return true;
  // fetch rejects with a TypeError whose cause is the network error for refused, reset
  // and dropped connections; an invalid URL or a bad answer is no reason to retry.
  return error instanceof TypeError && networkCode(error) !== null;
}

/** Errors of connecting: the request never reached the server. */
const notConnected = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * True when a failed attempt may have been stored all the same: its answer was lost (a
 * reset, a timeout) or was a 5xx, which a proxy or the server may send after the commit.
 * A 4xx or a refused connection means the attempt stored nothing.
 */
export function mayHaveBeenStored(error: Error): boolean {
  if (error instanceof HttpStatusError) return error.status >= 500;
  const code = networkCode(error);
  return code === null || !notConnected.has(code);
}

/** The network error code (`ECONNRESET`, …) behind a failed fetch, if any. */
function networkCode(error: Error): string | null {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : null;
}

/** The status, code and message an `EventsNotStoredError` gives for a failure. */
export function describeFailure(error: Error): {
  status: number | null;
  code: string | null;
  message: string;
} {
  if (error instanceof HttpStatusError) {
    const code = (error.body as { error?: { code?: unknown } } | null)?.error?.code;
    return {
      status: error.status,
      code: typeof code === 'string' ? code : null,
      message: error.message,
    };
  }
  if (error.name === 'TimeoutError') {
    return { status: null, code: 'timeout', message: error.message };
  }
  const code = networkCode(error);
  return {
    status: null,
    code,
    message: code === null ? error.message : `${error.message} (${code})`,
  };
}
