import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { accumulatorFor } from '../../projections/projection.ts';
import type { LogCursor } from '../cursors.ts';
import type { LedgerStore, RunnerLock } from '../store/ledger-store.ts';
import { isTransient } from '../errors.ts';
import { followLog } from '../live/log-follower.ts';
import type { PersistedProjection } from './persisted-projection.ts';
import {
  readGenerations,
  readStateParts,
  startBuilding,
  switchToBuilt,
  writeBatch,
} from './projection-tables.ts';
import type { Generation, StateRow } from './projection-tables.ts';
import { readAhead } from '../store/read-ahead.ts';
import { holdLockForever } from '../store/lock-holder.ts';
import { RecentlyUsed } from '../recently-used.ts';
import { TimeSlice } from '../time-slice.ts';

/** How a runner reads, caches and retries. */
export interface ProjectionRunnerOptions {
  /**
   * Most events per batch, and so per transaction (default 50,000; read in pages of at
   * most 10,000). Catching up fills whole batches; following takes what has arrived.
   */
  batchSize?: number;
  /** Job states kept in memory between batches (default 1,000). */
  cacheSize?: number;
  /** Longest wait between polls when no wake-up arrives (default 1,000 ms). */
  pollIntervalMs?: number;
  /**
   * Longest wait between attempts to take the lock another process holds (default 2,000
   * ms). Each wait is drawn between half and all of it, so many servers spread their attempts.
   */
  lockRetryMs?: number;
  /** Errors the runner recovered from by starting over; default: ignored. */
  onError?: (error: unknown) => void;
  /** Runs inside each batch's transaction just before it commits; a throw rolls it back. */
  beforeCommit?: (batch: { generation: Generation; events: number }) => void | Promise<void>;
}

/** How long a batch's fold holds the event loop before it lets other work run. */
const foldSliceMs = 5;

/** A page of the log to fold. */
interface LogPage {
  events: RecordedEvent[];
  next: LogCursor;
}

/** What a runner needs of the ledger. */
export interface RunnerContext {
  store: Pick<LedgerStore, 'db' | 'tryLock' | 'wakeUps'>;
  readPage(after: LogCursor, limit: number): Promise<LogPage>;
}

/**
 * Keeps one persisted projection current: folds new events of the log into its states
 * and moves its checkpoint in the same transaction, so each event takes effect once even
 * if the process dies mid-batch. Only the holder of the projection's lock runs; another
 * process takes over when the holder's connection dies.
 *
 * @example
 * const runner = new ProjectionRunner(context, jobsProjection);
 * runner.start();
 * await runner.stop();
 */
export class ProjectionRunner<S> {
  private readonly options: Required<Omit<ProjectionRunnerOptions, 'beforeCommit'>> &
    Pick<ProjectionRunnerOptions, 'beforeCommit'>;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private restartFollow: AbortController | null = null;

  constructor(
    private readonly context: RunnerContext,
    readonly definition: PersistedProjection<S>,
    options: ProjectionRunnerOptions = {},
  ) {
    this.options = {
      batchSize: options.batchSize ?? 50_000,
      cacheSize: options.cacheSize ?? 1_000,
      pollIntervalMs: options.pollIntervalMs ?? 1_000,
      lockRetryMs: options.lockRetryMs ?? 2_000,
      onError: options.onError ?? (() => undefined),
      ...(options.beforeCommit ? { beforeCommit: options.beforeCommit } : {}),
    };
  }

  private get db(): Kysely<Database> {
    return this.context.store.db;
  }

  /** Runs in the background until `stop`: waits for the lock, catches up, then follows. */
  start(): void {
    this.loop ??= this.runForever();
  }

  /** Stops following, lets the batch in flight finish or roll back, and releases the lock. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  /** Makes a running runner look again for a generation to build. */
  wake(): void {
    this.restartFollow?.abort();
  }

  /**
   * Folds the log into the states until they have caught up, switching to a freshly built
   * generation when there is one. Returns null when another process holds the lock.
   */
  async catchUp(): Promise<Generation | null> {
    const lock = await this.context.store.tryLock(this.definition.name);
    if (!lock) return null;
    try {
      return await this.catchUpHolding(lock);
    } finally {
      await lock.release();
    }
  }

  private runForever(): Promise<void> {
    const options = {
      tryLock: () => this.tryLock(),
      lockRetryMs: this.options.lockRetryMs,
      signal: this.stopping.signal,
      onError: this.options.onError,
    };
    return holdLockForever(options, async ({ lock, recovered }) => {
      await this.catchUpHolding(lock);
      recovered();
      await this.followHolding(lock);
    });
  }

  private async tryLock(): Promise<RunnerLock | null> {
    try {
      return await this.context.store.tryLock(this.definition.name);
    } catch (error) {
      if (!isTransient(error)) this.options.onError(error);
      return null;
    }
  }

  /** The generation to fold into: a building one, else the active one if its code is current. */
  private async target(): Promise<Generation> {
    const { name, version } = this.definition;
    const generations = await readGenerations(this.db, name);
    const building = generations.find((row) => row.status === 'building');
    const active = generations.find((row) => row.status === 'active');
    if (!building && active?.codeVersion === version) return active;
    return startBuilding(this.db, name, version);
  }

  private async catchUpHolding(lock: RunnerLock): Promise<Generation> {
    let generation = await this.target();
    const cache = new RecentlyUsed<S>(this.options.cacheSize);
    const { batchSize } = this.options;
    const pageSize = Math.min(batchSize, limits.readPage);
    // The next page is read while this one is folded and written.
    const pages = readAhead(
      () => this.context.readPage(generation.cursor, pageSize),
      (page) => (page.events.length < pageSize ? null : this.context.readPage(page.next, pageSize)),
    );
    let batch: RecordedEvent[] = [];
    let next = generation.cursor;
    for await (const page of pages) {
      this.throwIfStopped(lock);
      for (const event of page.events) batch.push(event);
      next = page.next;
      if (batch.length >= batchSize) {
        generation = await this.apply(generation, { events: batch, next }, cache);
        batch = [];
      }
    }
    if (batch.length > 0) generation = await this.apply(generation, { events: batch, next }, cache);
    if (generation.status === 'building') {
      await switchToBuilt(this.db, generation);
      generation = { ...generation, status: 'active' };
    }
    this.cache = cache;
    return generation;
  }

  private cache: RecentlyUsed<S> | null = null;

  /**
   * A state this runner holds in memory, if any: the fold of its key's stream up to the
   * state's version, committed or not, so readers in this process may start from it.
   */
  cachedState(key: string): S | undefined {
    return this.cache?.get(key);
  }

  private async followHolding(lock: RunnerLock): Promise<void> {
    let generation = await this.target();
    if (generation.status === 'building') return;
    const restart = new AbortController();
    this.restartFollow = restart;
    // A rebuild asked for by another process shows up as a building generation.
    const watcher = setInterval(() => {
      void readGenerations(this.db, this.definition.name)
        .then((rows) => {
          if (rows.some((row) => row.status === 'building')) restart.abort();
        })
        .catch(() => undefined);
    }, this.options.pollIntervalMs * 5);
    const cache = (this.cache ??= new RecentlyUsed<S>(this.options.cacheSize));
    try {
      const pages = followLog({
        after: generation.cursor,
        batchSize: Math.min(this.options.batchSize, limits.readPage),
        pollIntervalMs: this.options.pollIntervalMs,
        readPage: (cursor, limit) => this.context.readPage(cursor, limit),
        wakeUps: this.context.store.wakeUps,
        signal: AbortSignal.any([this.stopping.signal, lock.lost, restart.signal]),
      });
      for await (const page of pages) {
        this.throwIfStopped(lock);
        generation = await this.apply(generation, page, cache);
      }
    } finally {
      clearInterval(watcher);
      this.restartFollow = null;
    }
  }

  private throwIfStopped(lock: RunnerLock): void {
    lock.lost.throwIfAborted();
  }

  /** Folds one page into the states and writes them with the checkpoint, atomically. */
  private async apply(generation: Generation, page: LogPage, cache: RecentlyUsed<S>) {
    const { definition } = this;
    const byKey = new Map<string, RecordedEvent[]>();
    for (const event of page.events) {
      const events = byKey.get(event.streamId);
      if (events) events.push(event);
      else byKey.set(event.streamId, [event]);
    }
    const missing = [...byKey.keys()].filter((key) => !cache.has(key));
    const loaded = await readStateParts(this.db, definition.name, generation.generation, missing);
    const next = new Map<string, S>();
    const rows: StateRow[] = [];
    // The server's requests are served between slices of the fold, not after all of it.
    const slice = new TimeSlice(foldSliceMs);
    for (const [key, events] of byKey) {
      const before =
        cache.get(key) ??
        (loaded.has(key) ? definition.join(loaded.get(key)!) : definition.projection.initial());
      // The accumulator copies each touched item bucket once per batch, not once per event.
      const accumulator = accumulatorFor(definition.projection, before);
      for (let index = 0; index < events.length; index += 1) {
        accumulator.add(events[index]!);
        if (index % 1_024 === 1_023) await slice.yieldIfDue();
      }
      const after = accumulator.result();
      if (after === before) continue;
      next.set(key, after);
      for (const [part, value] of definition.changedParts(after, events)) {
        rows.push({ key, part, value });
      }
      await slice.yieldIfDue();
    }
    try {
      await this.db.transaction().execute(async (trx) => {
        await writeBatch(trx, generation, page.next, page.events.length, rows);
        await this.options.beforeCommit?.({ generation, events: page.events.length });
      });
    } catch (error) {
      // What the cache holds may be ahead of what was committed.
      cache.clear();
      throw error;
    }
    for (const [key, state] of next) cache.set(key, state);
    return { ...generation, cursor: page.next, events: generation.events + page.events.length };
  }
}
