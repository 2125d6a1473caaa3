import type { FinishedStatus } from '../projections/job-status.ts';
/** Codes of the errors the ledger throws on purpose (subclasses of `HeadwayError`). */
export type HeadwayErrorCode =
  | 'appender_closed'
  | 'concurrency'
  | 'database_unavailable'
  | 'idempotency_conflict'
  | 'invalid_event'
  | 'invalid_input'
  | 'event_too_large'
  | 'job_finished'
  | 'job_not_started'
  | 'not_found'
  | 'runner_fenced'
  | 'store_busy'
  | 'store_lock_lost';

/** Codes only the HTTP layer answers with: refusals of a request before it reaches the ledger. */
export type HttpErrorCode =
  | 'bad_request'
  | 'body_too_large'
  | 'forbidden'
  | 'headers_too_large'
  | 'internal'
  | 'request_timeout'
  | 'too_many_streams'
  | 'unauthenticated'
  | 'unsupported_media_type'
  | 'uri_too_long';

/** Codes only the HTTP client SDK throws (`EventsNotStoredError`). */
export type ClientErrorCode = 'events_not_stored';

/** Every code an error can carry: the library's, the HTTP API's, the client SDK's. */
export type ErrorCode = HeadwayErrorCode | HttpErrorCode | ClientErrorCode;

/** Base class of every error the ledger throws on purpose; `code` says which. */
export class HeadwayError extends Error {
  readonly code: HeadwayErrorCode;

  constructor(code: HeadwayErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An expected-version mode of `append`. */
export type ExpectedVersion = 'any' | 'no_stream' | 'stream_exists' | number;

/** The stream's head version did not match what the caller expected. */
export class ConcurrencyError extends HeadwayError {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    readonly actual: number,
  ) {
    super(
      'concurrency',
      `Stream '${streamId}': expected ${describeExpected(expected)}, but its version is ${actual}${actual === 0 ? ' (no stream)' : ''}`,
    );
  }
}

function describeExpected(expected: ExpectedVersion): string {
  if (expected === 'no_stream') return 'no stream';
  if (expected === 'stream_exists') return 'an existing stream';
  if (expected === 'any') return 'any version';
  return `version ${expected}`;
}

/**
 * An append reuses event ids it may not: a batch repeats some, not all, event ids of an
 * earlier append (or ids of another stream), or a retry repeats ids with other content
 * (type, schemaVersion, data or metadata). Nothing of the batch was written.
 */
export class IdempotencyConflictError extends HeadwayError {
  constructor(
    readonly streamId: string | null,
    readonly repeated: number,
    readonly events: number,
    /** The conflicting ids: those stored with other content, or the ones repeated. */
    readonly eventIds: readonly string[] = [],
    /** For a retry with other content, what differs (`data`, `metadata`, `type`, `schemaVersion`). */
    readonly fields: readonly string[] = [],
  ) {
    super(
      'idempotency_conflict',
      fields.length > 0
        ? `Stream '${streamId ?? '?'}': ${describeIds(eventIds)} ${eventIds.length === 1 ? 'was' : 'were'} appended before with other ${fields.join(', ')}; a retry must repeat its events unchanged, and a new event needs a new id`
        : `Stream '${streamId ?? '?'}': ${repeated} of ${events} event ids were appended before${eventIds.length > 0 ? ` (${describeIds(eventIds)})` : ''}; a retry must repeat the whole batch with the same ids, and a new batch must use new ids`,
    );
  }
}

function describeIds(eventIds: readonly string[]): string {
  const shown = eventIds.slice(0, 5).join(', ');
  const more = eventIds.length > 5 ? ` and ${eventIds.length - 5} more` : '';
  return `event id${eventIds.length === 1 ? '' : 's'} ${shown}${more}`;
}

/** One problem found in an input, with where it is and what was expected. */
export interface ValidationIssue {
  /** Path inside the input, e.g. `events[3].data.itemId`. */
  path: string;
  message: string;
}

/** An event (or a batch) failed validation; nothing was written. */
export class InvalidEventError extends HeadwayError {
  constructor(readonly issues: readonly ValidationIssue[]) {
    super('invalid_event', formatIssues(issues));
  }
}

/** Any other input (a query, an option, a cursor) failed validation. */
export class InvalidInputError extends HeadwayError {
  constructor(readonly issues: readonly ValidationIssue[]) {
    super('invalid_input', formatIssues(issues));
  }
}

function formatIssues(issues: readonly ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((issue) => `${issue.path || '(root)'}: ${issue.message}`);
  const more = issues.length > 5 ? `; and ${issues.length - 5} more` : '';
  return `${shown.join('; ')}${more}`;
}

/** An event's data and metadata serialise to more bytes than the cap. */
export class EventTooLargeError extends HeadwayError {
  constructor(
    readonly path: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(
      'event_too_large',
      `${path}: expected at most ${limit} bytes of JSON, received ${bytes} bytes`,
    );
  }
}

/** A job or other named thing does not exist. */
export class NotFoundError extends HeadwayError {
  constructor(what: string) {
    super('not_found', `${what} was not found`);
  }
}

/** The job has ended (completed, failed or cancelled), so it cannot resume. */
export class JobFinishedError extends HeadwayError {
  constructor(
    readonly jobId: string,
    readonly status: FinishedStatus,
  ) {
    super(
      'job_finished',
      `Job '${jobId}' cannot resume: expected a pending, running or paused job, received one that ${status === 'cancelled' ? 'was cancelled' : status}; start a new job to run the work again`,
    );
  }
}

/**
 * Events went to a job (stream) that has none yet, and the batch did not open with
 * `job.started`: a mistyped job id, most often. Nothing of the batch was written.
 */
export class JobNotStartedError extends HeadwayError {
  constructor(
    readonly jobId: string,
    /** The type of the batch's first event for that job (null when it had none). */
    readonly received: string | null,
    /** What else was refused with it, e.g. the other streams of an `appendMany` call. */
    note?: string,
  ) {
    super(
      'job_not_started',
      `job ${JSON.stringify(jobId)} was never started: expected its first event to be job.started, received ${received ?? 'no event'}${note ? `; ${note}` : ''}`,
    );
  }
}

/** The embedded store's data folder is open in another process. */
export class StoreBusyError extends HeadwayError {
  /**
   * `holder` names the other process, as the lock file says (e.g. `pid 42 on host-a`);
   * `servedAt` is the URL that process serves the store at (`headway serve`), if any.
   */
  constructor(
    readonly dataDir: string,
    holder?: string,
    readonly servedAt?: string,
  ) {
    const opened = `The embedded store at ${dataDir} is open in another process${holder ? ` (${holder})` : ''}`;
    super(
      'store_busy',
      servedAt
        ? `${opened}, which serves it at ${servedAt}. The commands that read and record (jobs, status, watch, export, import, resume, demo, …) go through that server by themselves; migrate, rebuild, a second serve and programs that open the store need it to themselves: stop that server first, or use PostgreSQL (DATABASE_URL), where all of them run beside a server`
        : `${opened}; close that one, or use PostgreSQL (DATABASE_URL) to share a ledger between processes`,
    );
  }
}

/**
 * This process's lock on the embedded store was taken over or removed, so it stopped
 * writing: every later query fails with this error. Close the ledger and open it again.
 */
export class StoreLockLostError extends HeadwayError {
  constructor(
    readonly dataDir: string,
    received: string,
  ) {
    super(
      'store_lock_lost',
      `The embedded store at ${dataDir} lost its lock: expected its lock file to name this process, but it ${received}; this process stopped writing to the store, and nothing after this error was stored`,
    );
  }
}

/** A `CoalescingAppender` was closed; the call was refused and nothing was written. */
export class AppenderClosedError extends HeadwayError {
  constructor() {
    super(
      'appender_closed',
      'The coalescing appender is closed: it flushed what was queued and takes no new appends; use a new appender or ledger.append',
    );
  }
}

/** PostgreSQL is unreachable, or did not answer within its bound; retry shortly. */
export class DatabaseUnavailableError extends HeadwayError {
  constructor(detail: string, cause?: unknown) {
    super(
      'database_unavailable',
      `The database is unavailable (${detail}); retry shortly, with the same event ids for appends`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** A projection runner's checkpoint moved under it: another runner wrote, or a rebuild replaced it. */
export class RunnerFencedError extends HeadwayError {
  constructor(projection: string, generation: number) {
    super(
      'runner_fenced',
      `Projection '${projection}' generation ${generation}: its checkpoint moved under this runner; another runner took over`,
    );
  }
}

/** True for errors of a lost, refused or timed-out connection, which a later try may not meet. */
export function isTransient(error: unknown): boolean {
  if (error instanceof DatabaseUnavailableError) return true;
  if (error instanceof HeadwayError) return false;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // Connection exceptions (08…), admin shutdown (57P0…), a statement cancelled by its
    // timeout (57014), too many connections (53300), the server starting up (57P03).
    if (/^(08|57P0)/.test(code) || code === '57014' || code === '53300') return true;
    if (
      ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH'].includes(
        code,
      )
    ) {
      return true;
    }
  }
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection (is )?closed|timeout exceeded when trying to connect|not queryable|Query read timeout|the database system is (starting up|shutting down)/i.test(
    message,
  );
}
