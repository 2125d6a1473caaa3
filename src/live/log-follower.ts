import type { LogCursor } from '../cursors.ts';
import { isTransient } from '../errors.ts';
import { reconnectDelayMs } from '../backoff.ts';
import type { WakeUps } from '../store/wake-ups.ts';

/** A page of the log as a follower reads it. */
export interface FollowedPage<E> {
  events: E[];
  next: LogCursor;
}

/** How a follower reads and waits. */
export interface FollowSettings<E> {
  after: LogCursor;
  batchSize: number;
  /** Longest wait between polls when no wake-up arrives. */
  pollIntervalMs: number;
  readPage(after: LogCursor, limit: number): Promise<FollowedPage<E>>;
  wakeUps: WakeUps;
  signal: AbortSignal;
}

/**
 * Follows the log from a cursor: reads pages until caught up, then waits for a wake-up
 * or the poll interval and reads again. Only the next page is read while the caller is
 * busy with the current one, so a slow caller slows its own reading and memory stays at
 * one page. Lost connections are retried with backoff; other errors end the follow.
 */
export async function* followLog<E>(settings: FollowSettings<E>): AsyncGenerator<FollowedPage<E>> {
  const { signal } = settings;
  const wake = new WakeSignal(signal);
  const subscription = settings.wakeUps.subscribe(() => wake.notify());
  let cursor = settings.after;
  let failures = 0;
  try {
    while (!signal.aborted) {
      // A wake-up that arrives during the read is kept and ends the next wait at once.
      wake.clear();
      let page: FollowedPage<E>;
      try {
        page = await settings.readPage(cursor, settings.batchSize);
        failures = 0;
      } catch (error) {
        if (signal.aborted) return;
        if (!isTransient(error)) throw error;
        await wake.sleep(reconnectDelayMs(failures++));
        continue;
      }
      if (page.events.length > 0) {
        cursor = page.next;
        yield page;
      }
      if (page.events.length < settings.batchSize) await wake.wait(settings.pollIntervalMs);
    }
  } finally {
    subscription.unsubscribe();
    wake.dispose();
  }
}

/** A latch a wake-up sets and a waiter clears; waits end early on a wake-up or abort. */
class WakeSignal {
  private pending = false;
  private release: (() => void) | null = null;
  private readonly onAbort = () => this.release?.();

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener('abort', this.onAbort);
  }

  notify(): void {
    this.pending = true;
    this.release?.();
  }

  clear(): void {
    this.pending = false;
  }

  /** Waits up to `ms`, less if a wake-up arrived since the last `clear`. */
  wait(ms: number): Promise<void> {
    if (this.pending || this.signal.aborted) return Promise.resolve();
    return this.sleep(ms);
  }

  /** Waits up to `ms`; a wake-up or abort ends it early. */
  sleep(ms: number): Promise<void> {
    if (this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.release = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.release = done;
    });
  }

  dispose(): void {
    this.signal.removeEventListener('abort', this.onAbort);
    this.release?.();
  }
}
