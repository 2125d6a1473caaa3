import { randomUUID } from 'node:crypto';
import type { EventInput } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { reconnectDelayMs } from '../backoff.ts';
import type { ExpectedVersion } from '../errors.ts';
import { JobRecorder } from '../job-recorder.ts';
import type { EventAppender, JobRecorderOptions } from '../job-recorder.ts';
import { prepareStreams } from '../append-statement.ts';
import type { ResumeOptions, ResumePoint } from '../resume-job.ts';
import { followEventStream, HttpStatusError, statusError } from './event-stream.ts';
import type { StreamMessage } from './event-stream.ts';

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
  /** Failures the client cannot retry (events it had to drop) and retries it makes. */
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
 * A Headway client over HTTP. `job()` gives the same recording handle as `ledger.job()`:
 * events are buffered and sent in batches per job, in order, every `flushEvents` events
 * or `flushIntervalMs`; a batch that fails on the network, with 429 or with 5xx is sent
 * again with the same event ids, so it lands once. Transient failures never reach the
 * caller; `flush()` waits until everything is stored.
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
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.flushEvents = Math.min(options.flushEvents ?? 500, limits.eventsPerAppend);
    this.flushIntervalMs = options.flushIntervalMs ?? 200;
    this.batchEvents = Math.min(options.batchEvents ?? 1_000, limits.eventsPerAppend);
    this.maxBuffered = Math.max(options.maxBufferedEvents ?? 20_000, this.flushEvents);
  }

  /** A recording handle for one job (a new id when none is given). */
  job(jobId?: string, options?: JobRecorderOptions): JobRecorder<ClientAppendResult> {
    return new JobRecorder(this, jobId, options);
  }

  /**
   * Queues events of one job. Bad events are refused here, at once. With an
   * `expectedVersion` other than 'any' (a job's start) the call waits until the job's
   * earlier events and these are stored, and a conflict is thrown to the caller.
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
      const version = await this.send(jobId, stamped, expectedVersion, false);
      return { jobId, events: stamped.length, ...(version === undefined ? {} : { version }) };
    }
    while (this.buffered + stamped.length > this.maxBuffered && this.buffered > 0) {
      // Backpressure: send everything now, and wait until a batch has been stored.
      for (const [waitingJob, buffer] of this.buffers) {
        if (buffer.events.length > 0) void this.drain(waitingJob);
      }
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
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

  /** Sends everything buffered and waits until it is stored. */
  async flush(): Promise<void> {
    await Promise.all([...this.buffers.keys()].map((jobId) => this.flushJob(jobId)));
  }

  /** Flushes, then refuses new events. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
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

  /** Sends a job's buffer in batches, one request at a time, until it is empty. */
  private drain(jobId: string): Promise<void> {
    const buffer = this.buffers.get(jobId)!;
    buffer.sending ??= (async () => {
      try {
        while (buffer.events.length > 0) {
          const batch = buffer.events.slice(0, this.batchEvents);
          await this.send(jobId, batch, 'any', true);
          buffer.events.splice(0, batch.length);
          this.buffered -= batch.length;
          buffer.oldestAt = Date.now();
          for (const wake of this.roomWaiters.splice(0)) wake();
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
   * Posts one batch, again and again on transient failures (network, 429, 5xx) with
   * the same ids. A permanent failure of a buffered batch is reported and the batch
   * dropped; a waited-for call throws it.
   */
  private async send(
    jobId: string,
    events: EventInput[],
    expectedVersion: ExpectedVersion,
    buffered: boolean,
  ): Promise<number | undefined> {
    const path = `/v1/jobs/${encodeURIComponent(jobId)}/events`;
    const body = expectedVersion === 'any' ? { events } : { events, expectedVersion };
    for (let attempt = 0; ; attempt += 1) {
      try {
        return (await this.request<{ version: number }>('POST', path, body)).version;
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        if (!isTransientFailure(failure)) {
          if (!buffered) throw failure;
          this.options.onError?.(failure, { jobId, events: events.length, retrying: false });
          return undefined;
        }
        this.options.onError?.(failure, { jobId, events: events.length, retrying: true });
        const retryAfter = failure instanceof HttpStatusError ? failure.retryAfterMs : null;
        await new Promise((resolve) =>
          setTimeout(resolve, retryAfter ?? reconnectDelayMs(attempt)),
        );
      }
    }
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw await statusError(response);
    return (await response.json()) as T;
  }
}

function isTransientFailure(error: Error): boolean {
  if (error instanceof HttpStatusError) return [429, 502, 503, 504].includes(error.status);
  // fetch rejects with a TypeError whose cause is the network error for refused, reset
  // and dropped connections; an invalid URL or a bad answer is no reason to retry.
  const cause = (error as { cause?: { code?: unknown } }).cause;
  return error instanceof TypeError && typeof cause?.code === 'string';
}
