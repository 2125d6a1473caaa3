import { sql } from 'kysely';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { limits } from '../../schema/limits.ts';
import { reconnectDelayMs, sleep } from '../backoff.ts';
import { compareLogCursors, parseLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import { isTransient } from '../errors.ts';
import type { SubscribeOptions } from './live-reads.ts';

/** What the follower needs of a ledger: the log, followed and read. */
export interface FollowedLog {
  readonly db: Kysely<Database>;
  follow(options: SubscribeOptions, signal?: AbortSignal): AsyncGenerator<ReadAllPage>;
  liveCursor(): Promise<LogCursor>;
  readAll(options: ReadAllOptions): Promise<ReadAllPage>;
}
import type { ReadAllOptions, ReadAllPage } from '../store/log-reads.ts';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';

/** How a shared follower reads and buffers. */
export interface SharedFollowerOptions {
  /** Events per read of the log (default 1,000). */
  batchSize?: number;
  /** Longest wait between polls when no wake-up arrives (default 1,000 ms). */
  pollIntervalMs?: number;
  /** Reads of their own that lagging subscribers may run at once (default 2). */
  maxCatchUpReads?: number;
  /**
   * Events queued for one subscriber before it is left to catch up by reading on its own,
   * paced by its consumer (default 10,000).
   */
  maxQueuedEvents?: number;
}

type Filter = Omit<SubscribeOptions, 'after' | 'batchSize' | 'pollIntervalMs'>;

interface Subscriber {
  filter: Filter;
  /** The last event handed to the consumer, or where it started. */
  cursor: LogCursor;
  /** Events the shared read delivered and the consumer has not taken yet. */
  queue: RecordedEvent[];
  /** True once the queue overflowed: it no longer holds every matching event. */
  overflowed: boolean;
  wake: () => void;
}

/**
 * One reader of the log for many live subscribers (every SSE and WebSocket stream of a
 * server): each wake-up costs one read, whatever the number of streams. A subscriber
 * that starts behind, or falls behind, reads on its own (a few at a time) until it has
 * caught up, then joins the shared read again; it never misses or repeats an event.
 *
 * @example
 * const follower = new SharedFollower(ledger);
 * for await (const page of follower.follow({ streamIds: [jobId] }, signal)) send(page.events);
 */
export class SharedFollower {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly maxQueuedEvents: number;
  private readonly subscribers = new Set<Subscriber>();
  private readonly controller = new AbortController();
  private started: Promise<void> | undefined;
  /** Where the shared read stands: every event up to here was handed to subscribers. */
  private position: LogCursor | undefined;
  private readonly projects = new Map<string, string | null>();
  private catchUpSlots: number;
  private readonly catchUpWaiters: (() => void)[] = [];

  constructor(
    private readonly ledger: FollowedLog,
    options: SharedFollowerOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 1_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.catchUpSlots = options.maxCatchUpReads ?? 2;
    this.maxQueuedEvents = options.maxQueuedEvents ?? 10_000;
  }

  /** Subscribers following now. */
  get size(): number {
    return this.subscribers.size;
  }

  /** A cursor after every event handed out so far: following from it starts live. */
  async cursor(): Promise<LogCursor> {
    await this.start();
    return this.position!;
  }

  /**
   * Follows the log after `after` (default: now) with the filter of `ledger.follow`,
   * page by page, until `signal` aborts.
   */
  async *follow(options: SubscribeOptions = {}, signal: AbortSignal): AsyncGenerator<ReadAllPage> {
    const { after, batchSize: _batch, pollIntervalMs: _poll, ...filter } = options;
    await this.start();
    const subscriber: Subscriber = {
      filter,
      cursor: after === undefined ? this.position! : parseLogCursor(after),
      queue: [],
      overflowed: false,
      wake: () => undefined,
    };
    // Anything delivered from here on is queued, so reads of its own need only reach
    // what was delivered before.
    this.subscribers.add(subscriber);
    const onAbort = () => subscriber.wake();
    signal.addEventListener('abort', onAbort);
    try {
      let reading = compareLogCursors(subscriber.cursor, this.position!) < 0;
      let failures = 0;
      while (!signal.aborted) {
        if (reading) {
          // The shared read must be running before the queue starts anew (it may have
          // ended on a failure), so that the queue holds everything after this point.
          let page: ReadAllPage;
          try {
            await this.start();
            subscriber.overflowed = false;
            page = await this.catchUpRead(subscriber, signal);
            failures = 0;
          } catch (error) {
            if (signal.aborted) return;
            if (!isTransient(error)) throw error;
            await sleep(reconnectDelayMs(failures++), signal);
            continue;
          }
          if (page.events.length > 0) {
            subscriber.cursor = page.next;
            yield page;
          }
          // Caught up, with nothing lost from the queue meanwhile: the shared read takes over.
          if (page.events.length < this.batchSize && !subscriber.overflowed) reading = false;
          continue;
        }
        if (subscriber.overflowed) {
          subscriber.queue = [];
          reading = true;
          continue;
        }
        const events = this.take(subscriber);
        if (events.length > 0) {
          subscriber.cursor = { ...events.at(-1)! };
          yield { events, next: subscriber.cursor };
          continue;
        }
        await new Promise<void>((resolve) => {
          subscriber.wake = resolve;
          if (subscriber.queue.length > 0 || subscriber.overflowed || signal.aborted) resolve();
        });
        subscriber.wake = () => undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.subscribers.delete(subscriber);
    }
  }

  /** Stops the shared read. */
  close(): void {
    this.controller.abort();
    for (const subscriber of this.subscribers) subscriber.wake();
  }

  private start(): Promise<void> {
    this.started ??= this.ledger.liveCursor().then(
      (cursor) => {
        this.position = cursor;
        void this.run(cursor);
      },
      (error: unknown) => {
        // Not started: the next subscriber tries again.
        this.started = undefined;
        throw error;
      },
    );
    return this.started;
  }

  /** The shared read: one page per wake-up, handed to every subscriber it matches. */
  private async run(from: LogCursor): Promise<void> {
    const pages = this.ledger.follow(
      { after: from, batchSize: this.batchSize, pollIntervalMs: this.pollIntervalMs },
      this.controller.signal,
    );
    try {
      for await (const page of pages) {
        const projectsKnown = await this.learnProjects(page.events).then(
          () => true,
          () => false,
        );
        for (const subscriber of this.subscribers) {
          if (!projectsKnown && subscriber.filter.projects?.length) {
            // Its matches cannot be told now: it reads on its own, which filters in SQL.
            subscriber.overflowed = true;
            subscriber.wake();
          } else {
            this.deliver(subscriber, page.events);
          }
        }
        this.position = page.next;
      }
    } catch {
      // Only a non-transient failure ends a follow; start afresh for the next subscriber.
      this.started = undefined;
      for (const subscriber of this.subscribers) {
        subscriber.overflowed = true;
        subscriber.wake();
      }
    }
  }

  private deliver(subscriber: Subscriber, events: readonly RecordedEvent[]): void {
    if (subscriber.overflowed) return;
    let added = false;
    for (const event of events) {
      if (compareLogCursors(event, subscriber.cursor) <= 0 || !this.matches(subscriber, event)) {
        continue;
      }
      subscriber.queue.push(event);
      added = true;
    }
    if (subscriber.queue.length > this.maxQueuedEvents) {
      // A slow consumer: it reads on its own from its cursor, at its own pace.
      subscriber.overflowed = true;
      subscriber.queue = [];
      added = true;
    }
    if (added) subscriber.wake();
  }

  /** Queued events past the subscriber's cursor, at most a page. */
  private take(subscriber: Subscriber): RecordedEvent[] {
    const taken = subscriber.queue.splice(0, this.batchSize);
    return taken.filter((event) => compareLogCursors(event, subscriber.cursor) > 0);
  }

  private matches(subscriber: Subscriber, event: RecordedEvent): boolean {
    const { types, streamIds, projects } = subscriber.filter;
    if (types?.length && !types.includes(event.type)) return false;
    if (streamIds?.length && !streamIds.includes(event.streamId)) return false;
    if (projects?.length) {
      const project = this.projects.get(event.streamId);
      if (project === undefined || project === null || !projects.includes(project)) return false;
    }
    return true;
  }

  /** The project of each stream in the page, as its `job.started` names it. */
  private async learnProjects(events: readonly RecordedEvent[]): Promise<void> {
    const wanted = [...this.subscribers].some((subscriber) => subscriber.filter.projects?.length);
    if (!wanted) return;
    // Bounded: forgetting only costs a lookup.
    if (this.projects.size > 100_000) this.projects.clear();
    const unknown = new Set<string>();
    for (const event of events) {
      if (event.version === 1 && event.type === 'job.started') {
        const { project } = event.data as { project?: unknown };
        this.projects.set(event.streamId, typeof project === 'string' ? project : null);
      } else if (!this.projects.has(event.streamId)) {
        unknown.add(event.streamId);
      }
    }
    if (unknown.size === 0) return;
    const ids = [...unknown];
    for (let from = 0; from < ids.length; from += limits.readPage) {
      const chunk = ids.slice(from, from + limits.readPage);
      const rows = await this.ledger.db
        .selectFrom('events')
        .select(['stream_id', sql<string | null>`data->>'project'`.as('project')])
        .where('stream_id', 'in', chunk)
        .where('version', '=', 1 as never)
        .where('type', '=', 'job.started')
        .execute();
      for (const id of chunk) this.projects.set(id, null);
      for (const row of rows) this.projects.set(row.stream_id, row.project);
    }
  }

  /** A page read for one subscriber, a few such reads at a time across the server. */
  private async catchUpRead(subscriber: Subscriber, signal: AbortSignal): Promise<ReadAllPage> {
    while (this.catchUpSlots === 0) {
      await new Promise<void>((resolve) => this.catchUpWaiters.push(resolve));
      if (signal.aborted) return { events: [], next: subscriber.cursor };
    }
    this.catchUpSlots -= 1;
    try {
      return await this.ledger.readAll({
        ...subscriber.filter,
        after: subscriber.cursor,
        limit: this.batchSize,
      });
    } finally {
      this.catchUpSlots += 1;
      this.catchUpWaiters.shift()?.();
    }
  }
}
