import { randomUUID } from 'node:crypto';
import type { EventInput } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { reconnectDelayMs, sleep } from '../backoff.ts';
import type { ExpectedVersion } from '../errors.ts';
import { JobRecorder } from '../append/job-recorder.ts';
import type { EventAppender, JobRecorderOptions } from '../append/job-recorder.ts';
import { prepareStreams } from '../append/prepare-streams.ts';
import type { ResumeOptions, ResumePoint } from '../append/resume-job.ts';
import { followEventStream, HttpStatusError, statusError } from './event-stream.ts';
import type { StreamMessage } from './event-stream.ts';
import { EventsNotStoredError } from './events-not-stored.ts';
import type { NotStoredJob } from './events-not-stored.ts';

/** How a client talks to a Headway server and how it buffers. */
export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:4680`. */
  url: string;
  /** A bearer token from the server's `HEADWAY_TOKENS`. */
  token?: string;
  /** Send a job's buffered events once this many are waiting (default 500). */
  flushEvents?: number;
  /** …or once the oldest has waited this long (default 200 ms). */
  flushIntervalMs?: number;
  /** Most events in one request (default 1,000, at most 10,000). */
  batchEvents?: number;
  /** Most events buffered across jobs; recording awaits while it is full (default 20,000). */
  maxBufferedEvents?: number;
  /**
   * How long a batch is retried, from its first attempt, before it is given up and its
   * events reported by `flush()` / `close()` (default 300,000: five minutes). The last
   * attempt may start at this bound and take up to `requestTimeoutMs` more.
   */
  giveUpAfterMs?: number;
  /** How long one request may take, answer included, before it counts as failed and is
   * retried (default 30,000 ms). */
  requestTimeoutMs?: number;
  /**
   * Each failed attempt (`retrying: true`, it is sent again) and each batch given up
   * (`retrying: false`; `flush()` and `close()` then reject with `EventsNotStoredError`).
   */
  onError?: (error: Error, context: { jobId: string; events: number; retrying: boolean }) => void;
}

/** What a buffered recording call resolves to: the event is queued, not yet stored. */
export interface Queued {
  jobId: string;
  /** Events of the call, now in the buffer. */
  events: number;
}

/** The same answer as `Queued`, or the stored result when the call had to wait for one. */
export type ClientAppendResult = Queued & { version?: number };

interface JobBuffer {
  events: EventInput[];
  /** The request in flight for this job, if any: a job's batches go one at a time. */
  sending: Promise<void> | null;
  oldestAt: number;
}

/**
 * A batch given up: the last error, whether retries ran out or it was no use, and
 * whether an attempt may have reached the server and been stored all the same.
 */
class BatchGivenUp extends Error {
  constructor(
    readonly failure: Error,
    readonly attempts: number,
    readonly retriesExhausted: boolean,
    readonly maybeStored: boolean,
  ) {
    super(failure.message, { cause: failure });
  }
}

/**
 * A Headway client over HTTP. `job()` gives the same recording handle as `ledger.job()`:
 * events are buffered and sent in batches per job, in order, every `flushEvents` events
 * or `flushIntervalMs`. A batch that fails on the network, by a timeout, with 408, 429 or
 * any 5xx is sent again with the same event ids, so it lands once, with exponential
 * backoff and jitter, or after the server's `Retry-After`. Transient failures never reach
 * the caller; `flush()` waits until everything is stored.
 *
 * A batch is given up when retries run out (`giveUpAfterMs`, default five minutes from its
 * first attempt) or on an answer that a retry cannot change (400, 401, 403, 404 such as
 * `job_not_started`, 409 `concurrency` or `idempotency_conflict`, 413, …). Then the job's
 * later events are held back, never sent past the failure, and the next `flush()` or
 * `close()` rejects with an `EventsNotStoredError` naming, per job, every event not stored
 * and the last answer (`maybeStored` when an attempt's answer was lost, so the batch may
 * have landed). Once that error is thrown the job's hold ends and its new events are sent
 * again. A call that waits for its answer (a job's `start`) throws its own failure instead.
 *
 * @example
 * const client = createClient({ url: 'http://127.0.0.1:4680', token });
 * const job = client.job();
 * await job.start({ name: 'resize', kind: 'image', project: 'shop', total: 2 });
 * await job.itemCompleted('a.jpg');
 * await client.close();
 */
export function createClient(options: ClientOptions): HeadwayClient {
  return new HeadwayClient(options);
}

/** See `createClient`. */
export class HeadwayClient implements EventAppender<ClientAppendResult> {
  private readonly base: string;
  private readonly flushEvents: number;
  private readonly flushIntervalMs: number;
  private readonly batchEvents: number;
  private readonly maxBuffered: number;
  private readonly buffers = new Map<string, JobBuffer>();
  private buffered = 0;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly giveUpAfterMs: number;
  private readonly requestTimeoutMs: number;
  /** Jobs with a batch given up and not yet reported: their later events are held here. */
  private readonly failed = new Map<string, NotStoredJob>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.flushEvents = Math.min(options.flushEvents ?? 500, limits.eventsPerAppend);
    this.flushIntervalMs = options.flushIntervalMs ?? 200;
    this.batchEvents = Math.min(options.batchEvents ?? 1_000, limits.eventsPerAppend);
    this.maxBuffered = Math.max(options.maxBufferedEvents ?? 20_000, this.flushEvents);
    this.giveUpAfterMs = Math.max(0, options.giveUpAfterMs ?? 300_000);
    this.requestTimeoutMs = Math.max(1, options.requestTimeoutMs ?? 30_000);
  }

  /** A recording handle for one job (a new id when none is given). */
  job(jobId?: string, options?: JobRecorderOptions): JobRecorder<ClientAppendResult> {
    return new JobRecorder(this, jobId, options);
  }

  /**
   * Queues events of one job. Bad events are refused here, at once. With an
   * `expectedVersion` other than 'any' (a job's start) the call waits until the job's
   * earlier events and these are stored, and a conflict is thrown to the caller. Events
   * of a job whose earlier batch was given up are held back and reported by the next
   * `flush()` or `close()`.
   */
  async append(
    jobId: string,
    events: readonly EventInput[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<ClientAppendResult> {
    if (this.closed) throw new Error('The Headway client is closed');
    const now = new Date();
    // Ids and times are fixed now, so a retry repeats the same events.
    const stamped = events.map((event) => ({
      ...event,
      eventId: event.eventId ?? randomUUID(),
      occurredAt: event.occurredAt ?? now,
    })) as EventInput[];
    // The server's own validation, run here so a bad call fails in the caller's hands.
    prepareStreams([{ streamId: jobId, events: stamped }], now);
    const expectedVersion = options.expectedVersion ?? 'any';
    if (expectedVersion !== 'any') {
      await this.flushJob(jobId);
      const failure = this.failed.get(jobId);
      if (failure) {
        // Not past the failure: these events are refused with the reason of the hold.
        throw new EventsNotStoredError([
          {
            ...failure,
            events: stamped.map((event) => notStored(event, true)),
            // Never sent: these are not stored, whatever became of the failed batch.
            maybeStored: false,
          },
        ]);
      }
      try {
        const version = await this.send(jobId, stamped, expectedVersion);
        return { jobId, events: stamped.length, version };
      } catch (error) {
        throw error instanceof BatchGivenUp ? error.failure : error;
      }
    }
    if (this.holdBack(jobId, stamped)) return { jobId, events: stamped.length };
    while (this.buffered + stamped.length > this.maxBuffered && this.buffered > 0) {
      // Backpressure: send everything now, and wait until a batch has been stored.
      for (const [waitingJob, buffer] of this.buffers) {
        if (buffer.events.length > 0) void this.drain(waitingJob);
      }
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.holdBack(jobId, stamped)) return { jobId, events: stamped.length };
    let buffer = this.buffers.get(jobId);
    if (!buffer) {
      buffer = { events: [], sending: null, oldestAt: Date.now() };
      this.buffers.set(jobId, buffer);
    }
    if (buffer.events.length === 0) buffer.oldestAt = Date.now();
    buffer.events.push(...stamped);
    this.buffered += stamped.length;
    if (buffer.events.length >= this.flushEvents) void this.drain(jobId);
    else this.armTimer();
    return { jobId, events: stamped.length };
  }

  /** Resumes a job on the server (after sending what is buffered for it). */
  async resume(jobId: string, options: ResumeOptions = {}): Promise<ResumePoint> {
    await this.flushJob(jobId);
    const { leaseExpiredBefore, ...rest } = options;
    return this.request<ResumePoint>('POST', `/v1/jobs/${encodeURIComponent(jobId)}/resume`, {
      ...rest,
      ...(leaseExpiredBefore === undefined
        ? {}
        : {
            leaseExpiredBefore:
              leaseExpiredBefore instanceof Date
                ? leaseExpiredBefore.toISOString()
                : leaseExpiredBefore,
          }),
    });
  }

  /**
   * Sends everything buffered and waits until it is stored or given up. Rejects with an
   * `EventsNotStoredError` when events were given up since the last such rejection: it
   * names each of them, per job, with the last answer.
   */
  async flush(): Promise<void> {
    await Promise.all([...this.buffers.keys()].map((jobId) => this.flushJob(jobId)));
    if (this.failed.size === 0) return;
    const jobs = [...this.failed.values()];
    // Reported now, so the jobs' new events are sent again.
    this.failed.clear();
    throw new EventsNotStoredError(jobs);
  }

  /**
   * Refuses new events, then flushes: resolves once every event is stored, and rejects
   * with an `EventsNotStoredError` when some were given up (and not reported before).
   * With the server down it waits up to `giveUpAfterMs` (plus one request) per batch.
   */
  async close(): Promise<void> {
    this.closed = true;
    try {
      await this.flush();
    } finally {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** A job's progress, ETA and children (`GET /v1/jobs/:id`); null for an unknown job. */
  async status(jobId: string): Promise<unknown> {
    try {
      return await this.request('GET', `/v1/jobs/${encodeURIComponent(jobId)}`);
    } catch (error) {
      if (error instanceof HttpStatusError && error.status === 404) return null;
      throw error;
    }
  }

  /**
   * One item of a job (`GET /v1/jobs/:id/items/:itemId`): status, stage, attempts, last
   * error; null for an unknown job or item.
   */
  async item(jobId: string, itemId: string): Promise<unknown> {
    try {
      return await this.request(
        'GET',
        `/v1/jobs/${encodeURIComponent(jobId)}/items/${encodeURIComponent(itemId)}`,
      );
    } catch (error) {
      if (error instanceof HttpStatusError && error.status === 404) return null;
      throw error;
    }
  }

  /**
   * True when the item completed or was skipped, for producers that skip done work.
   *
   * @example
   * if (!(await client.isProcessed(jobId, url))) await crawl(url);
   */
  async isProcessed(jobId: string, itemId: string): Promise<boolean> {
    const item = (await this.item(jobId, itemId)) as { processed?: unknown } | null;
    return item?.processed === true;
  }

  /**
   * A job's live stream: its status first (`snapshot`), then each event (`event`), across
   * dropped connections with no gap and no repeat.
   */
  watch(
    jobId: string,
    options: { after?: string; signal?: AbortSignal } = {},
  ): AsyncGenerator<StreamMessage> {
    const query = options.after ? `?after=${encodeURIComponent(options.after)}` : '';
    return followEventStream(`${this.base}/v1/jobs/${encodeURIComponent(jobId)}/stream${query}`, {
      ...(this.options.token ? { token: this.options.token } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  /** Every event (of one project) as it is committed, after `after` when given. */
  events(
    options: {
      project?: string;
      types?: string[];
      jobs?: string[];
      after?: string;
      signal?: AbortSignal;
    } = {},
  ): AsyncGenerator<StreamMessage> {
    const query = new URLSearchParams();
    if (options.project) query.set('project', options.project);
    if (options.jobs?.length) query.set('job', options.jobs.join(','));
    if (options.types?.length) query.set('type', options.types.join(','));
    if (options.after) query.set('after', options.after);
    const search = query.size > 0 ? `?${query.toString()}` : '';
    return followEventStream(`${this.base}/v1/stream${search}`, {
      ...(this.options.token ? { token: this.options.token } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const due = Date.now() - this.flushIntervalMs;
      for (const [jobId, buffer] of this.buffers) {
        if (buffer.events.length > 0 && buffer.oldestAt <= due) void this.drain(jobId);
      }
      if ([...this.buffers.values()].some((buffer) => buffer.events.length > 0)) this.armTimer();
    }, this.flushIntervalMs);
    // A buffer waiting to be sent does not keep the process alive; `close()` does.
    this.timer.unref();
  }

  /** Holds back the events of a job with an unreported failure; true when it did. */
  private holdBack(jobId: string, events: readonly EventInput[]): boolean {
    const failure = this.failed.get(jobId);
    if (!failure) return false;
    failure.events.push(...events.map((event) => notStored(event, true)));
    return true;
  }

  /** Frees buffer room and wakes the recording calls waiting for it. */
  private release(events: number): void {
    this.buffered -= events;
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  /**
   * Sends a job's buffer in batches, one request at a time, until it is empty. A batch
   * given up takes the rest of the buffer with it into `failed`, in order.
   */
  private drain(jobId: string): Promise<void> {
    const buffer = this.buffers.get(jobId)!;
    buffer.sending ??= (async () => {
      try {
        while (buffer.events.length > 0) {
          const batch = buffer.events.slice(0, this.batchEvents);
          try {
            await this.send(jobId, batch, 'any');
          } catch (error) {
            const givenUp =
              error instanceof BatchGivenUp
                ? error
                : new BatchGivenUp(
                    error instanceof Error ? error : new Error(String(error)),
                    1,
                    false,
                    false,
                  );
            const rest = buffer.events.splice(0);
            this.release(rest.length);
            this.failed.set(jobId, {
              jobId,
              events: rest.map((event, index) => notStored(event, index >= batch.length)),
              ...describeFailure(givenUp.failure),
              attempts: givenUp.attempts,
              retriesExhausted: givenUp.retriesExhausted,
              maybeStored: givenUp.maybeStored,
              error: givenUp.failure,
            });
            this.options.onError?.(givenUp.failure, {
              jobId,
              events: batch.length,
              retrying: false,
            });
            break;
          }
          buffer.events.splice(0, batch.length);
          buffer.oldestAt = Date.now();
          this.release(batch.length);
        }
      } finally {
        buffer.sending = null;
        // Jobs come and go: an idle job's buffer is not kept.
        if (buffer.events.length === 0 && this.buffers.get(jobId) === buffer) {
          this.buffers.delete(jobId);
        }
      }
    })();
    return buffer.sending;
  }

  private async flushJob(jobId: string): Promise<void> {
    const buffer = this.buffers.get(jobId);
    if (!buffer) return;
    // A drain may be finishing a batch while more arrived behind it.
    while (buffer.events.length > 0 || buffer.sending) {
      await (buffer.sending ?? this.drain(jobId));
    }
  }

  /**
   * Posts one batch, again on transient failures (network, timeout, 408, 429, 5xx) with
   * the same ids, for up to `giveUpAfterMs`: backoff with jitter, or the server's
   * `Retry-After`. Throws `BatchGivenUp` when retries run out or the answer is final.
   */
  private async send(
    jobId: string,
    events: EventInput[],
    expectedVersion: ExpectedVersion,
  ): Promise<number> {
    const path = `/v1/jobs/${encodeURIComponent(jobId)}/events`;
    const body = JSON.stringify(
      expectedVersion === 'any' ? { events } : { events, expectedVersion },
    );
    const giveUpAt = Date.now() + this.giveUpAfterMs;
    let maybeStored = false;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return (await this.request<{ version: number }>('POST', path, body)).version;
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        maybeStored ||= mayHaveBeenStored(failure);
        if (!isTransientFailure(failure)) {
          throw new BatchGivenUp(failure, attempt, false, maybeStored);
        }
        const left = giveUpAt - Date.now();
        if (left <= 0) throw new BatchGivenUp(failure, attempt, true, maybeStored);
        this.options.onError?.(failure, { jobId, events: events.length, retrying: true });
        const retryAfter = failure instanceof HttpStatusError ? failure.retryAfterMs : null;
        // The last try comes at the bound at the latest, even after a longer Retry-After.
        await sleep(Math.min(retryAfter ?? reconnectDelayMs(attempt - 1), left));
      }
    }
  }

  /** One request with a bounded wait; `body` is JSON, or already serialised. */
  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signal = AbortSignal.timeout(this.requestTimeoutMs);
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

/**
 * Worth sending again: 408, 429 and every 5xx (the append may or may not have been
 * stored; a retry with the same ids lands it once), a timeout, a network error. Any
 * other answer (400, 401, 403, 404 such as `job_not_started`, 409 `concurrency` /
 * `idempotency_conflict`, 413) is final.
 */
function isTransientFailure(error: Error): boolean {
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
function mayHaveBeenStored(error: Error): boolean {
  if (error instanceof HttpStatusError) return error.status >= 500;
  const code = networkCode(error);
  return code === null || !notConnected.has(code);
}

function networkCode(error: Error): string | null {
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : null;
}

/** The status, code and message an `EventsNotStoredError` gives for a failure. */
function describeFailure(error: Error): {
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

function notStored(event: EventInput, heldBack: boolean) {
  return { eventId: event.eventId!, type: event.type, heldBack, event };
}
