import { reconnectDelayMs, sleep } from '../backoff.ts';
import type { RunnerLock } from './ledger-store.ts';

// The loop of a background task that one process at a time runs: the projection runners,
// the condition watcher and the webhook deliverer (docs/architecture.md, "Effects").

/** How `holdLockForever` takes its lock and recovers. */
export interface LockHolderOptions {
  /** Takes the lock, or null when another process holds it. */
  tryLock(): Promise<RunnerLock | null>;
  /** Longest wait between attempts while another holds it; each is drawn between half and all of it. */
  lockRetryMs: number;
  /** Stops the loop: `hold` returns, the lock is released. */
  signal: AbortSignal;
  /** Errors recovered from by releasing, waiting and trying again. */
  onError?: (error: unknown) => void;
}

/** What `hold` gets while this process holds the lock. */
export interface Holding {
  lock: RunnerLock;
  /** Aborted on stop or when the lock is lost: `hold` should return then. */
  signal: AbortSignal;
  /** Says the work went well again: the next error backs off from the shortest wait. */
  recovered: () => void;
}

/**
 * Runs `hold` whenever this process holds the lock, until `signal` aborts. An error releases
 * the lock, backs off (longer after each error with no recovery between), and tries again.
 *
 * @example
 * await holdLockForever({ tryLock: () => store.tryLock('conditions'), lockRetryMs: 2_000, signal },
 *   async ({ signal: holding, recovered }) => { while (!holding.aborted) { await sweepOnce(); recovered(); } });
 */
export async function holdLockForever(
  options: LockHolderOptions,
  hold: (holding: Holding) => Promise<void>,
): Promise<void> {
  const { signal } = options;
  let failures = 0;
  const recovered = () => {
    failures = 0;
  };
  while (!signal.aborted) {
    const lock = await options.tryLock().catch((error: unknown) => {
      options.onError?.(error);
      return null;
    });
    if (!lock) {
      await sleep(options.lockRetryMs * (0.5 + Math.random() / 2), signal);
      continue;
    }
    let failed = false;
    try {
      await hold({ lock, signal: AbortSignal.any([signal, lock.lost]), recovered });
    } catch (error) {
      failed = !signal.aborted;
      if (failed) options.onError?.(error);
    } finally {
      await lock.release();
    }
    // Backing off without the lock: another process may take over meanwhile.
    if (failed) await sleep(reconnectDelayMs(failures++), signal);
  }
}
