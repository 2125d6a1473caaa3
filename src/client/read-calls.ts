import type { ResumeOptions, ResumePoint } from '../append/resume-job.ts';
import { followEventStream, HttpStatusError } from './event-stream.ts';
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

/** A 404 is an answer here (the job or item is unknown), not a failure. */
async function orNullWhenNotFound(request: Promise<unknown>): Promise<unknown> {
  try {
    return await request;
  } catch (error) {
    if (error instanceof HttpStatusError && error.status === 404) return null;
    throw error;
  }
}
