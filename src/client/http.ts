import {
  compareLogCursors,
  formatLogCursor,
  logCursorPattern,
  parseLogCursor,
} from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import { statusError } from './event-stream.ts';

/** How the client reaches the server: its base URL, the bearer token, a bound per request. */
export class ClientHttp {
  /** The server's URL without a trailing slash, so paths can be appended as they are. */
  readonly base: string;
  /** The log cursor of the latest append this client made, sent with reads. */
  private lastWrite: LogCursor | null = null;

  constructor(
    private readonly options: { url: string; token?: string; readYourWrites?: boolean },
    private readonly timeoutMs: number,
  ) {
    this.base = options.url.replace(/\/+$/, '');
  }

  /** The bearer token, read from the caller's options on each request, as it always was. */
  get token(): string | undefined {
    return this.options.token;
  }

  /**
   * One request with a bounded wait, answer included; `body` is JSON, or already
   * serialised (a batch is serialised once and sent as is on every retry).
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method === 'GET' && this.lastWrite && this.options.readYourWrites !== false) {
      headers['headway-read-after'] = formatLogCursor(this.lastWrite);
    }
    const signal = AbortSignal.timeout(this.timeoutMs);
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      signal,
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    if (!response.ok) throw await statusError(response);
    const answer = (await response.json()) as T;
    if (method === 'POST') this.noteWrite(answer);
    return answer;
  }

  /** Keeps the greatest log cursor an append answered with. */
  private noteWrite(answer: unknown): void {
    const cursor = (answer as { cursor?: unknown } | null)?.cursor;
    if (typeof cursor !== 'string' || !logCursorPattern.test(cursor)) return;
    const written = parseLogCursor(cursor);
    if (!this.lastWrite || compareLogCursors(written, this.lastWrite) > 0) this.lastWrite = written;
  }
}
