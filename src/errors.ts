/** Machine-readable error codes; the HTTP layer maps them to statuses. */
export type HeadwayErrorCode =
  | 'appender_closed'
  | 'concurrency'
  | 'idempotency_conflict'
  | 'invalid_event'
  | 'invalid_input'
  | 'event_too_large'
  | 'job_finished'
  | 'not_found'
  | 'store_busy';

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

/** A batch repeats some, not all, event ids of an earlier append (or ids of another stream). */
export class IdempotencyConflictError extends HeadwayError {
  constructor(
    readonly streamId: string | null,
    readonly repeated: number,
    readonly events: number,
  ) {
    super(
      'idempotency_conflict',
      `Stream '${streamId ?? '?'}': ${repeated} of ${events} event ids were appended before; a retry must repeat the whole batch with the same ids, and a new batch must use new ids`,
    );
  }
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
    readonly status: 'completed' | 'failed' | 'cancelled',
  ) {
    super(
      'job_finished',
      `Job '${jobId}' cannot resume: expected a pending, running or paused job, received one that ${status === 'cancelled' ? 'was cancelled' : status}; start a new job to run the work again`,
    );
  }
}

/** The embedded store's data folder is open in another process. */
export class StoreBusyError extends HeadwayError {
  constructor(readonly dataDir: string) {
    super(
      'store_busy',
      `The embedded store at ${dataDir} is open in another process; close that one, or use PostgreSQL (DATABASE_URL) to share a ledger between processes`,
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
