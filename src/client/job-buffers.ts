import type { EventInput } from '../../schema/events.ts';
import { BatchGivenUp } from './batch-sender.ts';
import type { ClientErrorListener } from './batch-sender.ts';
import { EventsNotStoredError, notStoredEvent } from './events-not-stored.ts';
import type { NotStoredJob } from './events-not-stored.ts';
import { describeFailure } from './send-failures.ts';

/** How the buffers batch, bound and send what waits. */
export interface JobBuffersOptions {
  /** Send a job's buffer once this many events wait. */
  flushEvents: number;
  /** …or once the oldest has waited this long. */
  flushIntervalMs: number;
  /** Most events in one batch. */
  batchEvents: number;
  /** Most events buffered across jobs; `add` waits while it is full. */
  maxBuffered: number;
  /** Sends one batch of a job, retrying; throws `BatchGivenUp` when it is given up. */
  send: (jobId: string, batch: EventInput[]) => Promise<unknown>;
  onError?: ClientErrorListener | undefined;
}

interface JobBuffer {
  events: EventInput[];
  /** The request in flight for this job, if any: a job's batches go one at a time. */
  sending: Promise<void> | null;
  oldestAt: number;
}

/**
 * The client's buffered appender: events wait per job and go out in order, in batches,
 * one request per job at a time. A batch given up holds the job's later events back
 * (never sent past the failure) until `flush` reports them.
 */
export class JobBuffers {
  private readonly buffers = new Map<string, JobBuffer>();
  private buffered = 0;
  private readonly roomWaiters: (() => void)[] = [];
  /** Jobs with a batch given up and not yet reported: their later events are held here. */
  private readonly failed = new Map<string, NotStoredJob>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: JobBuffersOptions) {}

  /**
   * Buffers stamped events of one job, waiting for room when the buffers are full, or
   * holds them back behind the job's unreported failure.
   */
  async add(jobId: string, events: EventInput[]): Promise<void> {
    if (this.holdBack(jobId, events)) return;
    while (this.buffered + events.length > this.options.maxBuffered && this.buffered > 0) {
      // Backpressure: send everything now, and wait until a batch has been stored.
      for (const [waitingJob, buffer] of this.buffers) {
        if (buffer.events.length > 0) void this.drain(waitingJob);
      }
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    // A batch may have been given up while this call waited for room.
    if (this.holdBack(jobId, events)) return;
    let buffer = this.buffers.get(jobId);
    if (!buffer) {
      buffer = { events: [], sending: null, oldestAt: Date.now() };
      this.buffers.set(jobId, buffer);
    }
    if (buffer.events.length === 0) buffer.oldestAt = Date.now();
    buffer.events.push(...events);
    this.buffered += events.length;
    if (buffer.events.length >= this.options.flushEvents) void this.drain(jobId);
    else this.armTimer();
  }

  /** The job's unreported failure, if a batch of it was given up. */
  failureOf(jobId: string): NotStoredJob | undefined {
    return this.failed.get(jobId);
  }

  /** Sends a job's buffer and waits until it is empty (stored or given up). */
  async flushJob(jobId: string): Promise<void> {
    const buffer = this.buffers.get(jobId);
    if (!buffer) return;
    // A drain may be finishing a batch while more arrived behind it.
    while (buffer.events.length > 0 || buffer.sending) {
      await (buffer.sending ?? this.drain(jobId));
    }
  }

  /**
   * Sends every buffer and waits; then rejects with an `EventsNotStoredError` naming the
   * events given up since the last such rejection.
   */
  async flush(): Promise<void> {
    await Promise.all([...this.buffers.keys()].map((jobId) => this.flushJob(jobId)));
    if (this.failed.size === 0) return;
    const jobs = [...this.failed.values()];
    // Reported now, so the jobs' new events are sent again.
    this.failed.clear();
    throw new EventsNotStoredError(jobs);
  }

  /** Stops the flush timer (the client is closing). */
  stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private armTimer(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const due = Date.now() - this.options.flushIntervalMs;
      for (const [jobId, buffer] of this.buffers) {
        if (buffer.events.length > 0 && buffer.oldestAt <= due) void this.drain(jobId);
      }
      if ([...this.buffers.values()].some((buffer) => buffer.events.length > 0)) this.armTimer();
    }, this.options.flushIntervalMs);
    // A buffer waiting to be sent does not keep a Node process alive; `close()` does.
    // Browsers' timers are numbers, with nothing to unref.
    if (typeof this.timer === 'object') this.timer.unref();
  }

  /** Holds back the events of a job with an unreported failure; true when it did. */
  private holdBack(jobId: string, events: readonly EventInput[]): boolean {
    const failure = this.failed.get(jobId);
    if (!failure) return false;
    failure.events.push(...events.map((event) => notStoredEvent(event, true)));
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
          const batch = buffer.events.slice(0, this.options.batchEvents);
          try {
            await this.options.send(jobId, batch);
          } catch (error) {
            this.giveUp(jobId, buffer, batch.length, BatchGivenUp.of(error));
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

  /** Moves the failed batch and everything behind it into `failed`, and says so. */
  private giveUp(jobId: string, buffer: JobBuffer, batchSize: number, givenUp: BatchGivenUp): void {
    const rest = buffer.events.splice(0);
    this.release(rest.length);
    this.failed.set(jobId, {
      jobId,
      events: rest.map((event, index) => notStoredEvent(event, index >= batchSize)),
      ...describeFailure(givenUp.failure),
      attempts: givenUp.attempts,
      retriesExhausted: givenUp.retriesExhausted,
      maybeStored: givenUp.maybeStored,
      error: givenUp.failure,
    });
    this.options.onError?.(givenUp.failure, { jobId, events: batchSize, retrying: false });
  }
}
