import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { EventInput } from '../../schema/events.ts';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import { limits } from '../../schema/limits.ts';
import { executeAppend } from './append-statement.ts';
import { prepareStreams } from './prepare-streams.ts';
import type { AppendResult, PreparedStream } from './prepare-streams.ts';
import {
  AppenderClosedError,
  ConcurrencyError,
  IdempotencyConflictError,
  InvalidInputError,
  isTransient,
  JobNotStartedError,
  type ExpectedVersion,
} from '../errors.ts';
import type { EventAppender } from './job-recorder.ts';
/** What the appender needs of a ledger: its connection and its failure rules. */
export interface AppendTarget {
  readonly db: Kysely<Database>;
  readonly failureRules?: readonly ClassificationRule[] | undefined;
}
import { withQueryTimeout } from '../store/postgres-pool.ts';

/** Bounds of one coalesced statement, and of the statements in flight. */
export interface CoalescingAppenderOptions {
  /** Most streams per statement (default and maximum `limits.streamsPerAppend`). */
  maxStreams?: number;
  /** Most events per statement across its streams (default 10,000); a larger call goes alone. */
  maxEvents?: number;
  /**
   * Statements in flight at once, on streams apart (default 4), so one slow or dead
   * connection holds up only the streams of its own batch.
   */
  maxInFlight?: number;
  /**
   * Longest wait for one statement (default 10,000 ms; PostgreSQL only). Past it the write
   * is abandoned, its connection destroyed and its callers get `DatabaseUnavailableError`:
   * a retry with the same event ids stores each event once, whatever became of it.
   */
  writeTimeoutMs?: number;
}

/** What is waiting to be written, for health checks. */
export interface AppenderBacklog {
  /** Calls queued and not yet in a statement. */
  queued: number;
  /** Statements being written now. */
  inFlight: number;
  /** How long the oldest unanswered call has waited, in ms (0 when none). */
  oldestWaitMs: number;
  /** True when the last statement found the database unavailable and none has worked since. */
  failing: boolean;
}

interface Pending {
  stream: PreparedStream;
  queuedAt: number;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Passing over more queued calls than this to fill one batch costs more CPU than it can
 * save; the calls behind are looked at by a later batch.
 */
const maxPassedOver = 1_000;

/**
 * Group commit for `append`: calls arriving while a write is in flight go into the next
 * single statement, one transaction across their streams; each caller still gets its own
 * result or its own error. Works as the `EventAppender` of a `JobRecorder`.
 *
 * @example
 * const appender = new CoalescingAppender(ledger);
 * await Promise.all(jobs.map((id) => appender.append(id, [{ type: 'item.completed', data: { itemId: 'a' } }])));
 * await appender.close();
 */
export class CoalescingAppender implements EventAppender {
  private readonly maxStreams: number;
  private readonly maxEvents: number;
  private readonly maxInFlight: number;
  private readonly writeTimeoutMs: number;
  private queue: Pending[] = [];
  /** The batches being written, and the streams they hold back. */
  private readonly writing = new Set<Pending[]>();
  private readonly busyStreams = new Set<string>();
  /** Event ids in statements in flight: a later call repeating one waits for its outcome. */
  private readonly busyIds = new Set<string>();
  private scheduled = false;
  private idle: (() => void) | null = null;
  private closed = false;
  private failing = false;

  constructor(
    private readonly ledger: AppendTarget,
    options: CoalescingAppenderOptions = {},
  ) {
    this.maxStreams = checkBound(
      'maxStreams',
      options.maxStreams ?? limits.streamsPerAppend,
      limits.streamsPerAppend,
    );
    this.maxEvents = checkBound(
      'maxEvents',
      options.maxEvents ?? limits.eventsPerAppend,
      Number.MAX_SAFE_INTEGER,
    );
    this.maxInFlight = checkBound('maxInFlight', options.maxInFlight ?? 4, 64);
    this.writeTimeoutMs = checkBound(
      'writeTimeoutMs',
      options.writeTimeoutMs ?? 10_000,
      Number.MAX_SAFE_INTEGER,
    );
  }

  /**
   * Appends events to one stream, as `ledger.append` does, in the next shared statement.
   * Calls to one stream are written in call order, so `expectedVersion` is checked
   * against the calls made before it.
   */
  async append(
    streamId: string,
    events: readonly EventInput[],
    options: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    if (this.closed) throw new AppenderClosedError();
    // Validated here, once, so a bad call fails alone and never reaches a batch.
    const [stream] = prepareStreams(
      [
        {
          streamId,
          events,
          ...(options.expectedVersion === undefined
            ? {}
            : { expectedVersion: options.expectedVersion }),
        },
      ],
      new Date(),
      this.ledger.failureRules,
    ) as [PreparedStream];
    // Queued before the first await, so calls to one stream keep their call order.
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ stream, queuedAt: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /** What waits to be written now. */
  backlog(): AppenderBacklog {
    let oldest = Infinity;
    for (const batch of this.writing) oldest = Math.min(oldest, batch[0]?.queuedAt ?? oldest);
    oldest = Math.min(oldest, this.queue[0]?.queuedAt ?? oldest);
    return {
      queued: this.queue.length,
      inFlight: this.writing.size,
      oldestWaitMs: oldest === Infinity ? 0 : Math.max(0, performance.now() - oldest),
      failing: this.failing,
    };
  }

  /** Writes everything queued, then refuses new calls with `AppenderClosedError`. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.queue.length > 0 || this.writing.size > 0) {
      await new Promise<void>((resolve) => (this.idle = resolve));
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // A microtask, not a timer: an idle appender adds no delay, and calls made in the
    // same tick still share the first statement.
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Starts statements while there are free slots and calls whose streams are free. */
  private pump(): void {
    while (this.writing.size < this.maxInFlight && this.queue.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) break;
      this.writing.add(batch);
      this.markBusy(batch, true);
      void this.write(batch).finally(() => {
        this.writing.delete(batch);
        this.markBusy(batch, false);
        if (this.queue.length > 0) this.pump();
        else if (this.writing.size === 0) this.idle?.();
      });
    }
    if (this.queue.length === 0 && this.writing.size === 0) this.idle?.();
  }

  private markBusy(batch: readonly Pending[], busy: boolean): void {
    for (const { stream } of batch) {
      if (busy) this.busyStreams.add(stream.streamId);
      else this.busyStreams.delete(stream.streamId);
      for (const { eventId } of stream.events) {
        if (busy) this.busyIds.add(eventId);
        else this.busyIds.delete(eventId);
      }
    }
  }

  /** The oldest calls that fit one statement: one per stream, no event id twice. */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const passedOver: Pending[] = [];
    // Streams and ids already taken or passed over, or in a statement in flight: a later
    // call touching them waits, which keeps each stream in call order and the statement
    // free of duplicates.
    const streams = new Set<string>(this.busyStreams);
    const ids = new Set<string>();
    let events = 0;
    let index = 0;
    for (; index < this.queue.length; index++) {
      if (batch.length === this.maxStreams || passedOver.length === maxPassedOver) break;
      const entry = this.queue[index]!;
      const { streamId, events: entryEvents } = entry.stream;
      const clashes =
        streams.has(streamId) ||
        entryEvents.some((event) => ids.has(event.eventId) || this.busyIds.has(event.eventId));
      if (!clashes && batch.length > 0 && events + entryEvents.length > this.maxEvents) break;
      streams.add(streamId);
      for (const event of entryEvents) ids.add(event.eventId);
      if (clashes) {
        passedOver.push(entry);
      } else {
        batch.push(entry);
        events += entryEvents.length;
      }
    }
    this.queue = passedOver.concat(this.queue.slice(index));
    return batch;
  }

  /**
   * Runs one batch; a stream's conflict (or a job never started) fails its caller and the
   * rest run again. An unreachable database fails the whole batch at once.
   */
  private async write(batch: Pending[]): Promise<void> {
    let pending = batch;
    while (pending.length > 0) {
      try {
        const results = await withQueryTimeout(this.writeTimeoutMs, () =>
          executeAppend(
            this.ledger.db,
            pending.map((entry) => entry.stream),
          ),
        );
        this.failing = false;
        pending.forEach((entry, index) => entry.resolve(results[index]!));
        return;
      } catch (error) {
        if (isTransient(error)) {
          this.failing = true;
          for (const entry of pending) entry.reject(error);
          return;
        }
        const streamId = conflictingStream(error);
        const culprit = pending.find((entry) => entry.stream.streamId === streamId);
        if (!culprit && pending.length > 1) {
          // Not pinned on one stream (data the database refused, a lost connection):
          // each caller's own statement tells whose it is.
          for (const entry of pending) await this.write([entry]);
          return;
        }
        if (!culprit) {
          pending[0]!.reject(error);
          return;
        }
        // The caller made a call of its own: the others of the statement are written next.
        culprit.reject(
          error instanceof JobNotStartedError
            ? new JobNotStartedError(error.jobId, error.received)
            : error,
        );
        pending = pending.filter((entry) => entry !== culprit);
      }
    }
  }
}

/** The stream a statement failed on, when the failure is that stream's alone. */
function conflictingStream(error: unknown): string | undefined {
  if (error instanceof ConcurrencyError) return error.streamId;
  if (error instanceof IdempotencyConflictError) return error.streamId ?? undefined;
  if (error instanceof JobNotStartedError) return error.jobId;
  return undefined;
}

function checkBound(path: string, value: number, max: number): number {
  if (Number.isSafeInteger(value) && value >= 1 && value <= max) return value;
  throw new InvalidInputError([
    { path, message: `expected an integer from 1 to ${max}, received ${JSON.stringify(value)}` },
  ]);
}
