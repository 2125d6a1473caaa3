import { AsyncLocalStorage } from 'node:async_hooks';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { DatabaseUnavailableError, isTransient } from '../errors.ts';

/** Bounds on every wait for PostgreSQL; each is an option of `openLedger` (`timeouts`). */
export interface PostgresTimeouts {
  /** Longest wait for a new connection (default 5,000 ms). */
  connectTimeoutMs: number;
  /**
   * Longest wait for a query's answer (default 30,000 ms). A query past it is abandoned
   * and its connection destroyed, so a dead connection never comes back to the pool.
   */
  queryTimeoutMs: number;
  /** The server's own bound on a statement (default 30,000 ms; 0 for none). */
  statementTimeoutMs: number;
  /** Idle time before TCP keepalive probes start, both ends (default 10,000 ms). */
  keepAliveMs: number;
}

/** The defaults of `PostgresTimeouts`. */
export const defaultTimeouts: PostgresTimeouts = {
  connectTimeoutMs: 5_000,
  queryTimeoutMs: 30_000,
  statementTimeoutMs: 30_000,
  keepAliveMs: 10_000,
};

const queryBound = new AsyncLocalStorage<number>();

/**
 * Runs `work` with a tighter (or looser; 0 for none) bound on each query it makes.
 *
 * @example
 * await withQueryTimeout(2_000, () => ledger.projectionStatus());
 */
export function withQueryTimeout<T>(ms: number, work: () => Promise<T>): Promise<T> {
  return queryBound.run(ms, work);
}

/**
 * The settings sent with every connection: the server's statement bound, keepalives from
 * its side (so it drops a vanished client and its locks), and a bound on idle
 * transactions, since an open one holds every gap-safe reader back (docs/architecture.md, "The log").
 */
export function sessionSettings(timeouts: PostgresTimeouts, schema?: string): string {
  const keepAliveSeconds = Math.max(1, Math.round(timeouts.keepAliveMs / 1_000));
  const settings = [
    '-c idle_in_transaction_session_timeout=30000',
    `-c statement_timeout=${timeouts.statementTimeoutMs}`,
    `-c tcp_keepalives_idle=${keepAliveSeconds}`,
    `-c tcp_keepalives_interval=${keepAliveSeconds}`,
    '-c tcp_keepalives_count=3',
    // Unacknowledged data this long means the client is gone, even mid-send.
    `-c tcp_user_timeout=${keepAliveSeconds * 4 * 1_000}`,
  ];
  if (schema) settings.push(`-c search_path=${schema}`);
  return settings.join(' ');
}

/** Client options for a connection of its own (LISTEN, runner locks) with the same bounds. */
export function clientConfig(
  databaseUrl: string,
  timeouts: PostgresTimeouts,
  applicationName: string,
  schema?: string,
): pg.ClientConfig {
  return {
    connectionString: databaseUrl,
    application_name: applicationName,
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    query_timeout: timeouts.queryTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: timeouts.keepAliveMs,
    options: sessionSettings(timeouts, schema),
  };
}

/**
 * A `pg` pool for Kysely whose every wait is bounded: connects time out, each query
 * races its bound, and a connection that timed out or failed is destroyed, never reused.
 * Errors of a lost or slow database become `DatabaseUnavailableError`.
 */
export function boundedPool(
  config: pg.PoolConfig,
  timeouts: PostgresTimeouts,
): PostgresPool & { readonly pg: pg.Pool } {
  const pool = new pg.Pool({
    ...config,
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: timeouts.keepAliveMs,
  });
  // An idle connection dropped by the server: the pool removes it.
  pool.on('error', () => undefined);
  // A checked-out connection's FATAL arrives between statements: without a listener it
  // would end the process. Its next query fails and it is destroyed on release.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const wrappers = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  return {
    pg: pool,
    options: pool.options,
    end: () => pool.end(),
    async connect() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw unavailable(error);
      }
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        wrapper = wrap(client, timeouts.queryTimeoutMs);
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
  };
}

function wrap(client: pg.PoolClient, defaultBoundMs: number): PostgresPoolClient {
  let broken: Error | undefined;
  const query = async (sql: string, parameters: readonly unknown[]) => {
    if (broken) throw new DatabaseUnavailableError('a broken connection was reused', broken);
    const boundMs = queryBound.getStore() ?? defaultBoundMs;
    let timer: NodeJS.Timeout | undefined;
    const running = client.query(sql, parameters as unknown[]);
    try {
      if (boundMs <= 0) return await running;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const error = new DatabaseUnavailableError(
            `the database did not answer within ${boundMs} ms`,
          );
          broken = error;
          // With a query in flight, `end` destroys the socket at once.
          client.end().catch(() => undefined);
          reject(error);
        }, boundMs);
      });
      running.catch(() => undefined);
      return await Promise.race([running, timedOut]);
    } catch (error) {
      if (isTransient(error)) {
        broken ??= error as Error;
        throw unavailable(error);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    query: query as unknown as PostgresPoolClient['query'],
    release: (destroy?: boolean) => client.release(broken ?? destroy),
  };
}

function unavailable(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError || !isTransient(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseUnavailableError(message, error);
}
