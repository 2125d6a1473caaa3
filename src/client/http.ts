import { statusError } from './event-stream.ts';

/** How the client reaches the server: its base URL, the bearer token, a bound per request. */
export class ClientHttp {
  /** The server's URL without a trailing slash, so paths can be appended as they are. */
  readonly base: string;

  constructor(
    private readonly options: { url: string; token?: string },
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
    return (await response.json()) as T;
  }
}
