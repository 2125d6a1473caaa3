import type { EventInput } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import type { ExpectedVersion } from '../errors.ts';
import { JobRecorder } from '../append/job-recorder.ts';
import type { EventAppender, JobRecorderOptions } from '../append/job-recorder.ts';
import type { ResumeOptions, ResumePoint } from '../append/resume-job.ts';
import { BatchGivenUp, sendBatch, stampAndCheck } from './batch-sender.ts';
import type { ClientErrorListener, RetryOptions } from './batch-sender.ts';
import type { StreamMessage } from './event-stream.ts';
import { EventsNotStoredError, notStoredEvent } from './events-not-stored.ts';
import { ClientHttp } from './http.ts';
import type { ClientAppendResult, ClientOptions } from './client-options.ts';
import { JobBuffers } from './job-buffers.ts';
import type { FailureReport } from '../../projections/job-failures.ts';
import type { ReplicationStatus } from '../store/replica.ts';
import type { JobView } from '../queries/job-list.ts';
import type { SummaryFigures } from '../../projections/job-summary.ts';
import type { ProjectionRow } from '../persisted/projection-admin.ts';
import type { Projection } from '../../projections/projection.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import type { LogCursor } from '../cursors.ts';
import { FoldCache, foldIncrementally } from '../fold-cache.ts';
import type { ReadAllPage, ReadStreamOptions } from '../store/log-reads.ts';
import {
  failureReport,
  followEvents,
  jobEventPages,
  jobItem,
  jobStatus,
  jobSummaryFigures,
  listJobs,
  projectionRows,
  replicationStatus,
  readJobEvents,
  readLogEvents,
  readTimeline,
  resumeJob,
  watchJob,
} from './read-calls.ts';
import type { EventsFilter, JobsFilter, TimelineEntry, TimelineFilter } from './read-calls.ts';
import {
  addWebhook,
  listWebhookDeliveries,
  listWebhooks,
  readWebhook,
  removeWebhook,
  redeliverWebhook,
  testWebhook,
} from './webhook-calls.ts';
import type { WebhookDeliveriesFilter } from './webhook-calls.ts';
import type { Delivery } from '../webhooks/webhook-deliveries.ts';
import type { Webhook, WebhookInput } from '../webhooks/webhook-subscriptions.ts';

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
  private readonly http: ClientHttp;
  private readonly retry: RetryOptions;
  private readonly buffers: JobBuffers;
  private readonly folds = new FoldCache(32);
  private closed = false;

  constructor(options: ClientOptions) {
    this.http = new ClientHttp(options, Math.max(1, options.requestTimeoutMs ?? 30_000));
    // Read from the caller's options at each failure, as before the split.
    const onError: ClientErrorListener = (error, context) => options.onError?.(error, context);
    this.retry = { giveUpAfterMs: Math.max(0, options.giveUpAfterMs ?? 300_000), onError };
    const flushEvents = Math.min(options.flushEvents ?? 500, limits.eventsPerAppend);
    this.buffers = new JobBuffers({
      flushEvents,
      flushIntervalMs: options.flushIntervalMs ?? 200,
      batchEvents: Math.min(options.batchEvents ?? 1_000, limits.eventsPerAppend),
      maxBuffered: Math.max(options.maxBufferedEvents ?? 20_000, flushEvents),
      send: (jobId, batch) => sendBatch(this.http, jobId, batch, 'any', this.retry),
      onError,
    });
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
    const stamped = stampAndCheck(jobId, events);
    const expectedVersion = options.expectedVersion ?? 'any';
    if (expectedVersion !== 'any') return this.appendNow(jobId, stamped, expectedVersion);
    await this.buffers.add(jobId, stamped);
    return { jobId, events: stamped.length };
  }

  /** Resumes a job on the server (after sending what is buffered for it). */
  async resume(jobId: string, options: ResumeOptions = {}): Promise<ResumePoint> {
    await this.buffers.flushJob(jobId);
    return resumeJob(this.http, jobId, options);
  }

  /**
   * Sends everything buffered and waits until it is stored or given up. Rejects with an
   * `EventsNotStoredError` when events were given up since the last such rejection: it
   * names each of them, per job, with the last answer.
   */
  flush(): Promise<void> {
    return this.buffers.flush();
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
      this.buffers.stopTimer();
    }
  }

  /** A job's progress, ETA and children (`GET /v1/jobs/:id`); null for an unknown job. */
  status(jobId: string): Promise<unknown> {
    return jobStatus(this.http, jobId);
  }

  /** A page of jobs, most recently updated first (`GET /v1/jobs`), filtered as `ledger.jobs`. */
  jobs(filter: JobsFilter = {}): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    return listJobs(this.http, filter);
  }

  /** A job's counts, durations and throughput (`GET /v1/jobs/:id/summary`); null if unknown. */
  summary(jobId: string): Promise<({ jobId: string } & SummaryFigures) | null> {
    return jobSummaryFigures(this.http, jobId);
  }

  /** A job's failure report (`GET /v1/jobs/:id/failures?format=export`); null if unknown. */
  failures(jobId: string): Promise<FailureReport | null> {
    return failureReport(this.http, jobId);
  }

  /**
   * A page of one job's events, or every job's without `jobId` (`GET /v1/jobs/:id/timeline`,
   * `GET /v1/timeline`); null for an unknown job.
   */
  timeline(
    filter: TimelineFilter = {},
  ): Promise<{ events: TimelineEntry[]; nextCursor: string | null } | null> {
    return readTimeline(this.http, filter);
  }

  /**
   * A page of a job's recorded events from a version (`GET /v1/jobs/:id/events`, at most
   * 1,000, the default), as `ledger.readStream` reads them; none for an unknown job.
   */
  readStream(jobId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    return readJobEvents(this.http, jobId, options);
  }

  /**
   * A page of the log after a log cursor (`GET /v1/events`, at most 1,000, the default),
   * gap-safe, as `ledger.readAll` reads it; `next` is the cursor to go on from.
   */
  readAll(options: { after?: LogCursor | string; limit?: number } = {}): Promise<ReadAllPage> {
    return readLogEvents(this.http, options);
  }

  /**
   * A job folded here through a projection, as `ledger.project` folds it, after sending
   * what is buffered for it: each read fetches only the events appended since the last
   * fold of that job (kept for the 32 most recently read). Treat the state as read-only.
   */
  async project<S>(jobId: string, projection: Projection<S>): Promise<S> {
    await this.buffers.flushJob(jobId);
    return foldIncrementally(this.folds, projection, jobId, (fromVersion) =>
      jobEventPages(this.http, jobId, fromVersion),
    );
  }

  /** Each persisted projection's generation, checkpoint and lag (`GET /v1/projections`). */
  projections(): Promise<ProjectionRow[]> {
    return projectionRows(this.http);
  }

  /** How far the server's read replica trails the primary; null when it has none. */
  replication(): Promise<ReplicationStatus | null> {
    return replicationStatus(this.http);
  }

  /**
   * One item of a job (`GET /v1/jobs/:id/items/:itemId`): status, stage, attempts, last
   * error; null for an unknown job or item.
   */
  item(jobId: string, itemId: string): Promise<unknown> {
    return jobItem(this.http, jobId, itemId);
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
    return watchJob(this.http, jobId, options);
  }

  /** Every event (of one project) as it is committed, after `after` when given. */
  events(options: EventsFilter = {}): AsyncGenerator<StreamMessage> {
    return followEvents(this.http, options);
  }

  /** The webhook subscriptions, oldest first (`GET /v1/webhooks`, admin scope). */
  webhooks(options: { includeRemoved?: boolean } = {}): Promise<Webhook[]> {
    return listWebhooks(this.http, options);
  }

  /**
   * Subscribes a URL to conditions (`POST /v1/webhooks`, admin scope); the secret that signs
   * its requests is returned here only. The server's `--webhook-allow-hosts` rules the target.
   *
   * @example
   * const { webhook, secret } = await client.addWebhook({ url, conditions: ['failed', 'stalled'] });
   */
  addWebhook(input: WebhookInput): Promise<{ webhook: Webhook; secret: string }> {
    return addWebhook(this.http, input);
  }

  /** One webhook subscription, removed or not (`GET /v1/webhooks/:id`, admin scope). */
  webhook(webhookId: string): Promise<Webhook> {
    return readWebhook(this.http, webhookId);
  }

  /** Stops a subscription, pending deliveries included (`DELETE /v1/webhooks/:id`). */
  removeWebhook(webhookId: string): Promise<Webhook> {
    return removeWebhook(this.http, webhookId);
  }

  /** A subscription's deliveries and their attempts, newest first (admin scope). */
  webhookDeliveries(webhookId: string, filter: WebhookDeliveriesFilter = {}): Promise<Delivery[]> {
    return listWebhookDeliveries(this.http, webhookId, filter);
  }

  /** Sends a dead-lettered delivery again, with a fresh set of attempts. */
  redeliverWebhook(webhookId: string, deliveryId: string): Promise<void> {
    return redeliverWebhook(this.http, webhookId, deliveryId);
  }

  /** Enqueues a test delivery that the server sends and retries like the others. */
  testWebhook(webhookId: string): Promise<{ deliveryId: string }> {
    return testWebhook(this.http, webhookId);
  }

  /**
   * A call that waits for its answer (a job's start): the job's buffer goes first, then
   * these events, unbuffered; a failure is thrown to the caller, not reported later.
   */
  private async appendNow(
    jobId: string,
    stamped: EventInput[],
    expectedVersion: ExpectedVersion,
  ): Promise<ClientAppendResult> {
    await this.buffers.flushJob(jobId);
    const failure = this.buffers.failureOf(jobId);
    if (failure) {
      // Not past the failure: these events are refused with the reason of the hold.
      throw new EventsNotStoredError([
        {
          ...failure,
          events: stamped.map((event) => notStoredEvent(event, true)),
          // Never sent: these are not stored, whatever became of the failed batch.
          maybeStored: false,
        },
      ]);
    }
    try {
      const version = await sendBatch(this.http, jobId, stamped, expectedVersion, this.retry);
      return { jobId, events: stamped.length, version };
    } catch (error) {
      throw error instanceof BatchGivenUp ? error.failure : error;
    }
  }
}
