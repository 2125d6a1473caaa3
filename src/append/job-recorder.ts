import type {
  EventData,
  EventInput,
  EventMetadata,
  EventType,
  JsonValue,
} from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { describeError } from '../../projections/failure-classification.ts';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import type { AppendResult } from './prepare-streams.ts';
import type { ExpectedVersion } from '../errors.ts';
import type { ResumeOptions, ResumePoint } from './resume-job.ts';

/** What a recorder needs of a ledger: the HTTP client implements the same. */
export interface EventAppender<R = AppendResult> {
  append(
    streamId: string,
    events: readonly EventInput[],
    options?: { expectedVersion?: ExpectedVersion },
  ): Promise<R>;
}

/** A ledger that can also resume a job: what `JobRecorder.resume` needs. */
export interface JobResumer {
  resume(jobId: string, options?: ResumeOptions): Promise<ResumePoint>;
}

/** Per-call envelope overrides: reuse `eventId` on retry so a retry never counts twice. */
export interface RecordOptions {
  eventId?: string;
  occurredAt?: Date | string;
  metadata?: EventMetadata;
}

/** Options of a recording handle. */
export interface JobRecorderOptions {
  /** Metadata stamped on every event (actor, source, correlation id). */
  metadata?: EventMetadata;
  /** Producer rules that classify failures before the defaults. */
  failureRules?: readonly ClassificationRule[];
}

type Data<T extends EventType> = EventData<T>;
type PlannedItem = string | { id: string; type?: string; group?: string };

/**
 * A typed handle that records one job's facts: each method validates, stamps ids and
 * times, and appends one event (or a few, for large plans).
 *
 * @example
 * const job = ledger.job();
 * await job.start({ name: 'thumbnails', kind: 'image', project: 'shop', total: 2 });
 * await job.itemCompleted('a.jpg', { durationMs: 40 });
 * await job.itemFailed('b.jpg', new Error('ENOSPC: no space left'));
 * await job.complete();
 */
export class JobRecorder<R = AppendResult> {
  readonly jobId: string;

  constructor(
    private readonly ledger: EventAppender<R>,
    jobId?: string,
    private readonly options: JobRecorderOptions = {},
  ) {
    this.jobId = jobId ?? crypto.randomUUID();
  }

  /** Records `job.started`; fails with a `ConcurrencyError` if the job already exists. */
  start(data: Data<'job.started'>, options?: RecordOptions): Promise<R> {
    return this.record([{ type: 'job.started', data, ...options }], 'no_stream');
  }

  /** Records `items.planned`; planning an item twice plans it once. */
  plan(items: readonly PlannedItem[], options?: RecordOptions): Promise<R> {
    const normalised = items.map((item) => (typeof item === 'string' ? { id: item } : item));
    // Split so that each event stays under both the item count and the byte cap.
    const events: EventInput[] = [];
    let chunk: typeof normalised = [];
    let bytes = 0;
    for (const item of normalised) {
      const size = JSON.stringify(item).length + 1;
      if (chunk.length === limits.itemsPerEvent || bytes + size > limits.eventBytes * 0.75) {
        events.push({ type: 'items.planned', data: { items: chunk } });
        chunk = [];
        bytes = 0;
      }
      chunk.push(item);
      bytes += size;
    }
    if (chunk.length > 0) events.push({ type: 'items.planned', data: { items: chunk } });
    if (events.length === 0) events.push({ type: 'items.planned', data: { items: [] } });
    if (options && events.length === 1) Object.assign(events[0]!, options);
    return this.record(events);
  }

  /** Records `job.scope_changed` for a total that was unknown or grew. */
  scope(total: number, options?: RecordOptions): Promise<R> {
    return this.one('job.scope_changed', { total }, options);
  }

  /** Records `stage.started`, which ends the stage before it. */
  stage(stage: string, data: { total?: number } = {}, options?: RecordOptions) {
    return this.one('stage.started', { stage, ...data }, options);
  }

  itemStarted(
    itemId: string,
    data: Omit<Data<'item.started'>, 'itemId'> = {},
    options?: RecordOptions,
  ): Promise<R> {
    return this.one('item.started', { itemId, ...data }, options);
  }

  itemCompleted(
    itemId: string,
    data: Omit<Data<'item.completed'>, 'itemId'> = {},
    options?: RecordOptions,
  ): Promise<R> {
    return this.one('item.completed', { itemId, ...data }, options);
  }

  /** Records `item.failed`, classifying any thrown value (docs/architecture.md, "Failure categories"). */
  itemFailed(
    itemId: string,
    thrown: unknown,
    data: Omit<Data<'item.failed'>, 'itemId' | 'error'> & { stage?: string } = {},
    options?: RecordOptions,
  ): Promise<R> {
    const { stage, ...rest } = data;
    const error = describeError(thrown, {
      ...(this.options.failureRules ? { rules: this.options.failureRules } : {}),
    });
    return this.one(
      'item.failed',
      { itemId, ...rest, error: stage === undefined ? error : { ...error, stage } },
      options,
    );
  }

  itemSkipped(
    itemId: string,
    data: Omit<Data<'item.skipped'>, 'itemId'> = {},
    options?: RecordOptions,
  ): Promise<R> {
    return this.one('item.skipped', { itemId, ...data }, options);
  }

  /** Records `items.released`: items whose lease expired or were reset go back to pending. */
  release(itemIds: readonly string[], reason: string, options?: RecordOptions) {
    return this.one('items.released', { itemIds: [...itemIds], reason }, options);
  }

  progress(data: Data<'progress.reported'>, options?: RecordOptions): Promise<R> {
    return this.one('progress.reported', data, options);
  }

  /** Records `checkpoint.saved`: where a resumed run should pick up. */
  checkpoint(cursor: JsonValue, note?: string, options?: RecordOptions): Promise<R> {
    return this.one(
      'checkpoint.saved',
      note === undefined ? { cursor } : { cursor, note },
      options,
    );
  }

  log(
    level: Data<'log.written'>['level'],
    message: string,
    context?: JsonValue,
    options?: RecordOptions,
  ): Promise<R> {
    return this.one(
      'log.written',
      context === undefined ? { level, message } : { level, message, context },
      options,
    );
  }

  pause(reason?: string, options?: RecordOptions): Promise<R> {
    return this.one('job.paused', reason === undefined ? {} : { reason }, options);
  }

  /**
   * Resumes the job after a crash or a pause: releases items whose lease expired, records
   * `job.resumed`, and returns the last checkpoint and the items left (see `Ledger.resume`).
   */
  resume(options?: ResumeOptions): Promise<ResumePoint> {
    const resumer = this.ledger as Partial<JobResumer>;
    if (typeof resumer.resume !== 'function') {
      return Promise.reject(new TypeError('this recorder appends only; resume needs a Ledger'));
    }
    return resumer.resume(this.jobId, options);
  }

  complete(result?: JsonValue, options?: RecordOptions): Promise<R> {
    return this.one('job.completed', result === undefined ? {} : { result }, options);
  }

  /** Records `job.failed`, describing any thrown value. */
  fail(thrown: unknown, options?: RecordOptions): Promise<R> {
    const error = describeError(thrown, {
      ...(this.options.failureRules ? { rules: this.options.failureRules } : {}),
    });
    return this.one('job.failed', { error }, options);
  }

  cancel(reason?: string, options?: RecordOptions): Promise<R> {
    return this.one('job.cancelled', reason === undefined ? {} : { reason }, options);
  }

  /** Appends several events of this job at once, in order, in one round trip. */
  record(events: readonly EventInput[], expectedVersion: ExpectedVersion = 'any') {
    const stamped = this.options.metadata
      ? events.map((event) => ({
          ...event,
          metadata: { ...this.options.metadata, ...event.metadata },
        }))
      : events;
    return this.ledger.append(this.jobId, stamped, { expectedVersion });
  }

  private one<T extends EventType>(
    type: T,
    data: EventData<T>,
    options: RecordOptions | undefined,
  ): Promise<R> {
    return this.record([{ type, data, ...options } as EventInput]);
  }
}
