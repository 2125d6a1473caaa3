import { reconnectDelayMs, sleep } from '../backoff.ts';
import { isTransient } from '../errors.ts';

/**
 * Waits until the database is ready (reachable, and migrated where that is asked),
 * retrying with backoff while it is unreachable, and says how it stands meanwhile, so a
 * server can start, and answer 503, before its database is up.
 *
 * @example
 * const readiness = new DatabaseReadiness(() => prepareSchema(ledger.db, schema));
 * const server = await createServer({ ledger, readiness });
 * await readiness.wait(signal);
 */
export class DatabaseReadiness {
  /** True once `prepare` has succeeded. */
  ready = false;
  /** Why the last try failed, while not ready. */
  lastError: string | null = null;
  /** Failed tries so far. */
  failures = 0;

  constructor(private readonly prepare: () => Promise<void>) {}

  /**
   * Tries `prepare` until it succeeds (true) or `signal` aborts (false). Errors other than
   * an unreachable database (a failed migration, missing privileges) are thrown.
   */
  async wait(signal: AbortSignal, onRetry?: (error: string, failures: number) => void) {
    while (!signal.aborted) {
      if (await this.tryOnce()) return true;
      onRetry?.(this.lastError!, this.failures);
      await sleep(reconnectDelayMs(this.failures), signal);
    }
    return false;
  }

  /** One try: true when ready, false when the database is unreachable. */
  async tryOnce(): Promise<boolean> {
    if (this.ready) return true;
    try {
      await this.prepare();
      this.ready = true;
      this.lastError = null;
      return true;
    } catch (error) {
      if (!isTransient(error)) throw error;
      this.lastError = error instanceof Error ? error.message : String(error);
      this.failures += 1;
      return false;
    }
  }
}
