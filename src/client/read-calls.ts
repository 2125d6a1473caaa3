import type { RecordedEvent } from '../../schema/recorded-event.ts';
import type { FailureReport } from '../../projections/job-failures.ts';
import type { JobView } from '../queries/job-list.ts';
import type { JobStatus } from '../../projections/job-status.ts';
import type { ConditionName } from '../../schema/events.ts';
import type { SummaryFigures } from '../../projections/job-summary.ts';
import type { ResumeOptions, ResumePoint } from '../append/resume-job.ts';
import { formatLogCursor, logStart, parseLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import type { ProjectionRow } from '../persisted/projection-admin.ts';
import type { ReadAllPage, ReadStreamOptions } from '../store/log-reads.ts';
import type { ReplicationStatus } from '../store/replica.ts';
import { followEventStream, HttpStatusError, recordedEventOf } from './event-stream.ts';
import type { StreamMessage } from './event-stream.ts';
import type { ClientHttp } from './http.ts';

// The client's calls that are not buffered appends: reads, resume and the live streams.

/** Which events `HeadwayClient.events` follows. */
export interface EventsFilter {
  project?: string;
  types?: string[];
  jobs?: string[];
  after?: string;
  signal?: AbortSignal;
}

/** Which jobs `HeadwayClient.jobs` lists (the query of `GET /v1/jobs`). */
export interface JobsFilter {
  project?: string;
  kind?: string;
  status?: readonly JobStatus[];
  /** Only running, paused and pending jobs, and those just ended. */
  active?: boolean;
  parentJobId?: string;
  /** Text in the job's id, name, kind or project. */
  text?: string;
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  /** Only stalled jobs (true), or only jobs not stalled (false). */
  stalled?: boolean;
  /** Only jobs in one of these conditions. */
  condition?: readonly ConditionName[];
}

/** Which events `HeadwayClient.timeline` reads: one job's, or every job's without `jobId`. */
export interface TimelineFilter {
  jobId?: string;
  /** Event types; one ending in `*` matches by prefix. */
  types?: readonly string[];
  /** ISO times: events that occurred at or after `since`, before `until`. */
  since?: string;
  until?: string;
  text?: string;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** A timeline event as the server sends it, typed again, with its one-line description. */
export type TimelineEntry = RecordedEvent & { summary: string };

/** `GET /v1/jobs`: a page of jobs, most recently updated first. */
export function listJobs(
  http: ClientHttp,
  filter: JobsFilter,
): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
  const query = new URLSearchParams();
  for (const name of ['project', 'kind', 'parentJobId', 'cursor'] as const) {
    if (filter[name] !== undefined) query.set(name, filter[name]);
  }
  if (filter.status?.length) query.set('status', filter.status.join(','));
  if (filter.active !== undefined) query.set('active', String(filter.active));
  if (filter.stalled !== undefined) query.set('stalled', String(filter.stalled));
  if (filter.condition?.length) query.set('condition', filter.condition.join(','));
  if (filter.text !== undefined) query.set('q', filter.text);
  if (filter.limit !== undefined) query.set('limit', String(filter.limit));
  return http.request('GET', `/v1/jobs${search(query)}`);
}

/** `GET /v1/jobs/:id/summary`: counts, durations and throughput; null for an unknown job. */
export function jobSummaryFigures(
  http: ClientHttp,
  jobId: string,
): Promise<({ jobId: string } & SummaryFigures) | null> {
  return orNullWhenNotFound(http.request('GET', `${jobPath(jobId)}/summary`));
}

/** `GET /v1/jobs/:id/failures?format=export`: the failure report; null for an unknown job. */
export function failureReport(http: ClientHttp, jobId: string): Promise<FailureReport | null> {
  return orNullWhenNotFound(http.request('GET', `${jobPath(jobId)}/failures?format=export`));
}

/**
 * `GET /v1/jobs/:id/timeline`, or `GET /v1/timeline` without a job: a page of events,
 * typed again; null for an unknown job.
 */
export async function readTimeline(
  http: ClientHttp,
  filter: TimelineFilter,
): Promise<{ events: TimelineEntry[]; nextCursor: string | null } | null> {
  const query = new URLSearchParams();
  if (filter.types?.length) query.set('type', filter.types.join(','));
  for (const name of ['since', 'until', 'order'] as const) {
    if (filter[name] !== undefined) query.set(name, filter[name]);
  }
  if (filter.text !== undefined) query.set('q', filter.text);
  if (filter.cursor !== undefined) query.set('after', filter.cursor);
  if (filter.limit !== undefined) query.set('limit', String(filter.limit));
  type WirePage = { events: unknown[]; nextCursor: string | null };
  // Without a job a 404 is no answer: that server lacks the route.
  const page =
    filter.jobId === undefined
      ? await http.request<WirePage>('GET', `/v1/timeline${search(query)}`)
      : await orNullWhenNotFound(
          http.request<WirePage>('GET', `${jobPath(filter.jobId)}/timeline${search(query)}`),
        );
  if (!page) return null;
  const events = page.events.map((event) => recordedEventOf(event) as TimelineEntry);
  return { events, nextCursor: page.nextCursor };
}

/** Most events the server answers per page of `GET /v1/jobs/:id/events` and `GET /v1/events`. */
export const eventsPage = 1_000;

/**
 * `GET /v1/jobs/:id/events`: a job's recorded events in version order, typed again; none
 * for an unknown job, as `ledger.readStream` answers.
 */
export async function readJobEvents(
  http: ClientHttp,
  jobId: string,
  options: ReadStreamOptions,
): Promise<RecordedEvent[]> {
  const query = new URLSearchParams();
  if (options.fromVersion !== undefined) query.set('fromVersion', String(options.fromVersion));
  query.set('limit', String(options.limit ?? eventsPage));
  const page = await orNullWhenNotFound(
    http.request<{ events: unknown[] }>('GET', `${jobPath(jobId)}/events${search(query)}`),
  );
  return page ? page.events.map(recordedEventOf) : [];
}

/** A job's events from a version, a page after another, until a page comes back short. */
export async function* jobEventPages(
  http: ClientHttp,
  jobId: string,
  fromVersion: number,
): AsyncGenerator<RecordedEvent[]> {
  for (let from = fromVersion; ;) {
    const events = await readJobEvents(http, jobId, { fromVersion: from, limit: eventsPage });
    yield events;
    if (events.length < eventsPage) return;
    from = events.at(-1)!.version + 1;
  }
}

/** `GET /v1/events`: the log after a log cursor, gap-safe, typed again, as `ledger.readAll`. */
export async function readLogEvents(
  http: ClientHttp,
  options: { after?: LogCursor | string; limit?: number },
): Promise<ReadAllPage> {
  const after = options.after === undefined ? logStart : parseLogCursor(options.after);
  const query = new URLSearchParams({
    after: formatLogCursor(after),
    limit: String(options.limit ?? eventsPage),
  });
  const page = await http.request<{ events: unknown[]; nextCursor: string }>(
    'GET',
    `/v1/events${search(query)}`,
  );
  return { events: page.events.map(recordedEventOf), next: parseLogCursor(page.nextCursor) };
}

/** `GET /v1/projections`: each persisted projection's generation, checkpoint and lag. */
export function projectionRows(http: ClientHttp): Promise<ProjectionRow[]> {
  return http.request('GET', '/v1/projections');
}

/** `GET /v1/replication`: the read replica's lag, or null when the server has none. */
export async function replicationStatus(http: ClientHttp): Promise<ReplicationStatus | null> {
  return (await http.request<{ replica: ReplicationStatus | null }>('GET', '/v1/replication'))
    .replica;
}

/** `POST /v1/jobs/:id/resume`, with a `Date` lease bound sent as ISO text. */
export function resumeJob(
  http: ClientHttp,
  jobId: string,
  options: ResumeOptions,
): Promise<ResumePoint> {
  const { leaseExpiredBefore, ...rest } = options;
  return http.request<ResumePoint>('POST', `/v1/jobs/${encodeURIComponent(jobId)}/resume`, {
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

/** `GET /v1/jobs/:id`: a job's status; null for an unknown job. */
export function jobStatus(http: ClientHttp, jobId: string): Promise<unknown> {
  return orNullWhenNotFound(http.request('GET', `/v1/jobs/${encodeURIComponent(jobId)}`));
}

/** `GET /v1/jobs/:id/items/:itemId`: one item; null for an unknown job or item. */
export function jobItem(http: ClientHttp, jobId: string, itemId: string): Promise<unknown> {
  return orNullWhenNotFound(
    http.request(
      'GET',
      `/v1/jobs/${encodeURIComponent(jobId)}/items/${encodeURIComponent(itemId)}`,
    ),
  );
}

/** A job's SSE stream (`/v1/jobs/:id/stream`), resumed across dropped connections. */
export function watchJob(
  http: ClientHttp,
  jobId: string,
  options: { after?: string; signal?: AbortSignal },
): AsyncGenerator<StreamMessage> {
  const query = options.after ? `?after=${encodeURIComponent(options.after)}` : '';
  return followEventStream(
    `${http.base}/v1/jobs/${encodeURIComponent(jobId)}/stream${query}`,
    streamOptions(http, options.signal),
  );
}

/** The log's SSE stream (`/v1/stream`), filtered, resumed across dropped connections. */
export function followEvents(
  http: ClientHttp,
  options: EventsFilter,
): AsyncGenerator<StreamMessage> {
  const query = new URLSearchParams();
  if (options.project) query.set('project', options.project);
  if (options.jobs?.length) query.set('job', options.jobs.join(','));
  if (options.types?.length) query.set('type', options.types.join(','));
  if (options.after) query.set('after', options.after);
  const search = query.size > 0 ? `?${query.toString()}` : '';
  return followEventStream(`${http.base}/v1/stream${search}`, streamOptions(http, options.signal));
}

function streamOptions(
  http: ClientHttp,
  signal: AbortSignal | undefined,
): { token?: string; signal?: AbortSignal } {
  return {
    ...(http.token ? { token: http.token } : {}),
    ...(signal ? { signal } : {}),
  };
}

function jobPath(jobId: string): string {
  return `/v1/jobs/${encodeURIComponent(jobId)}`;
}

function search(query: URLSearchParams): string {
  return query.size > 0 ? `?${query.toString()}` : '';
}

/** A 404 is an answer here (the job or item is unknown), not a failure. */
async function orNullWhenNotFound<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof HttpStatusError && error.status === 404) return null;
    throw error;
  }
}
