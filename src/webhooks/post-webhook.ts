import http from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { checkWebhookUrl, WebhookTargetError, webhookLookup } from './webhook-target.ts';

/** One webhook delivery to make. */
export interface WebhookRequest {
  url: string;
  /** Sent as is, as JSON; sign it with `signWebhook` beforehand. */
  body: string;
  /** Added to (and may override) the content-type and user-agent headers. */
  headers: Record<string, string>;
  /** Bound of the whole exchange: connect, response, body. */
  timeoutMs: number;
  /** The most response-body bytes read; the rest is not waited for. */
  maxResponseBytes: number;
  /** Hosts (as written in URLs, IP literals included) that may be loopback, private, … */
  allowHosts: readonly string[];
}

/** What came of one webhook delivery. */
export interface WebhookResponse {
  /** True for a 2xx answer only. */
  ok: boolean;
  /** Null when no response arrived. */
  status: number | null;
  durationMs: number;
  /** At most `maxResponseBytes` bytes of the response body, decoded as UTF-8. */
  responseBody: string;
  /** Why the delivery failed, or null when `ok`. */
  error: string | null;
}

/**
 * POSTs one webhook: checks the target at connect time, follows no redirects, bounds time and
 * response size. Failures of the target, network or receiver come back as `ok: false`; only
 * invalid arguments throw.
 * @example const result = await postWebhook({ url, body, headers: { 'Headway-Signature': sig }, timeoutMs: 10_000, maxResponseBytes: 4096, allowHosts: [] })
 */
export async function postWebhook(request: WebhookRequest): Promise<WebhookResponse> {
  const { timeoutMs, maxResponseBytes } = request;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`postWebhook: expected a positive timeoutMs, received ${timeoutMs}`);
  }
  if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 0) {
    throw new RangeError(
      `postWebhook: expected maxResponseBytes to be a whole number ≥ 0, received ${maxResponseBytes}`,
    );
  }
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);

  let url: URL;
  try {
    url = checkWebhookUrl(request.url, request.allowHosts);
  } catch (error) {
    if (!(error instanceof WebhookTargetError)) throw error;
    return {
      ok: false,
      status: null,
      durationMs: elapsed(),
      responseBody: '',
      error: error.message,
    };
  }

  return new Promise<WebhookResponse>((resolve) => {
    let settled = false;
    let response: IncomingMessage | undefined;
    let status: number | null = null;
    const decoder = new StringDecoder('utf8');
    let responseBody = '';
    let received = 0;

    const finish = (error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Nothing more is wanted from this exchange; drop the socket rather than drain it.
      response?.destroy();
      req.destroy();
      resolve({ ok: error === null, status, durationMs: elapsed(), responseBody, error });
    };

    const send = url.protocol === 'https:' ? https.request : http.request;
    // Throws (before any connection) only for headers Node refuses: the caller's mistake.
    const req: ClientRequest = send(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'headway-webhooks',
        ...request.headers,
        // Last, so no header given can break the framing of the body.
        'content-length': String(Buffer.byteLength(request.body)),
      },
      // Host names are checked again at connect time, against the addresses connected to.
      lookup: webhookLookup(request.allowHosts),
      agent: false,
    });
    const timer = setTimeout(() => finish(`timed out after ${timeoutMs} ms`), timeoutMs);

    req.on('error', (error) => finish(describeError(error)));
    req.on('response', (res) => {
      response = res;
      status = res.statusCode ?? null;
      const outcome = judgeStatus(res);
      if (maxResponseBytes === 0) return finish(outcome);
      res.on('data', (chunk: Buffer) => {
        if (settled) return;
        const room = maxResponseBytes - received;
        const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
        received += kept.length;
        // The decoder holds back a character split by the cap rather than mangle it.
        responseBody += decoder.write(kept);
        if (received >= maxResponseBytes) finish(outcome);
      });
      res.on('end', () => {
        responseBody += decoder.end();
        finish(outcome);
      });
      res.on('error', (error) => finish(`response body failed: ${describeError(error)}`));
      res.on('close', () => {
        if (!res.complete) finish('response body failed: the connection closed before its end');
      });
    });
    req.end(request.body);
  });
}

function judgeStatus(res: IncomingMessage): string | null {
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return null;
  if (status >= 300 && status < 400) {
    const location = res.headers.location;
    return `redirects are not followed: expected a 2xx status, received ${status}${location === undefined ? ' without a Location' : ` to ${location.slice(0, 500)}`}`;
  }
  return `expected a 2xx status, received ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
}

function describeError(error: unknown): string {
  if (error instanceof WebhookTargetError) return error.message;
  // Connecting to several addresses in turn fails with all their errors at once.
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map(describeError).join('; ');
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return error.message || code || error.name;
  }
  return String(error);
}
