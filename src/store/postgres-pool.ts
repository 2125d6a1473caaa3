import { AsyncLocalStorage } from 'node:async_hooks';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import pg from 'pg';
import { DatabaseUnavailableError, InvalidInputError, isTransient } from '../errors.ts';

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

/**
 * How `databaseUrl` reaches PostgreSQL: directly (`'none'`, the default), or through a
 * pooler in transaction mode (`'transaction'`: PgBouncer's `pool_mode = transaction`, and
 * the like), which hands each transaction to whichever server connection is free. Such a
 * pooler refuses (or drops) settings sent at connect, and lets session state leak between
 * its clients, so in that mode the settings ride in each transaction (`SET LOCAL`) and
 * nothing relies on a session (docs/architecture.md, "The log").
 */
export type PoolerMode = 'none' | 'transaction';

/** The pooler modes `openLedger` accepts. */
export const poolerModes: readonly PoolerMode[] = ['none', 'transaction'];

/**
 * The settings of `sessionSettings` that matter to one transaction, as `SET LOCAL`
 * statements for a transaction pooler: they end with the transaction, so nothing leaks to
 * the pooler's other clients, and a value another client leaked is overridden. Without a
 * schema, the search path is reset to the server's default for the same reason. TCP
 * keepalives are the pooler's own (see its `tcp_keep*` settings).
 */
export function transactionSettings(timeouts: PostgresTimeouts, schema?: string): string {
  return [
    'set local idle_in_transaction_session_timeout = 30000',
    `set local statement_timeout = ${Math.max(0, Math.trunc(timeouts.statementTimeoutMs))}`,
    schema ? `set local search_path to "${schema}"` : 'set local search_path to default',
  ].join('; ');
}

/**
 * Client options for a connection of its own (LISTEN, runner locks) with the same bounds.
 * Through a transaction pooler (`pooler: 'transaction'`) no settings are sent at connect:
 * the caller sets them in its transaction (`transactionSettings`).
 */
export function clientConfig(
  databaseUrl: string,
  timeouts: PostgresTimeouts,
  applicationName: string,
  schema?: string,
  pooler: PoolerMode = 'none',
): pg.ClientConfig {
  return {
    connectionString: databaseUrl,
    application_name: applicationName,
    connectionTimeoutMillis: timeouts.connectTimeoutMs,
    query_timeout: timeouts.queryTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: timeouts.keepAliveMs,
    ...(pooler === 'transaction' ? {} : { options: sessionSettings(timeouts, schema) }),
  };
}

/**
 * A `pg` pool for Kysely whose every wait is bounded: connects time out, each query
 * races its bound, and a connection that timed out or failed is destroyed, never reused.
 * Errors of a lost or slow database become `DatabaseUnavailableError`.
 *
 * With `perTransaction` (the `SET LOCAL` statements of `transactionSettings`, for a
 * transaction pooler), every transaction carries them: a `begin` sends them in the same
 * round trip, and a statement outside a transaction runs in one of its own (`begin; set
 * local …`, the statement, `commit`), since a pooler may give each statement another server
 * connection.
 */
export function boundedPool(
  config: pg.PoolConfig,
  timeouts: PostgresTimeouts,
  perTransaction?: string,
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
        throw unavailable(explainRefusal(error));
      }
      let wrapper = wrappers.get(client);
      if (!wrapper) {
        wrapper = wrap(client, timeouts.queryTimeoutMs, perTransaction);
        wrappers.set(client, wrapper);
      }
      return wrapper;
    },
  };
}

/** Statements that open a transaction, as Kysely sends them. */
const opensTransaction = /^\s*(begin|start\s+transaction)\b/i;
/** Statements that end or work inside one, which never get a transaction of their own. */
const controlsTransaction =
  /^\s*(commit|rollback|end|abort|savepoint|release|prepare\s+transaction)\b/i;

/** Runs one statement so that it carries `perTransaction` (see `boundedPool`). */
async function runCarrying(
  client: pg.PoolClient,
  sql: string,
  parameters: unknown[],
  perTransaction: string,
): Promise<pg.QueryResult> {
  // 'T' or 'E': inside a transaction, which got the settings when it began.
  if (client.getTransactionStatus() !== 'I' || controlsTransaction.test(sql)) {
    return client.query(sql, parameters);
  }
  if (opensTransaction.test(sql) && parameters.length === 0) {
    // One round trip, as before; a multi-statement query answers with one result each.
    const results = (await client.query(`${sql}; ${perTransaction}`)) as unknown;
    return (Array.isArray(results) ? results[0] : results) as pg.QueryResult;
  }
  await client.query(`begin; ${perTransaction}`);
  let result: pg.QueryResult;
  try {
    result = await client.query(sql, parameters);
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
  await client.query('commit');
  return result;
}

function wrap(
  client: pg.PoolClient,
  defaultBoundMs: number,
  perTransaction?: string,
): PostgresPoolClient {
  let broken: Error | undefined;
  const query = async (sql: string, parameters: readonly unknown[]) => {
    if (broken) throw new DatabaseUnavailableError('a broken connection was reused', broken);
    const boundMs = queryBound.getStore() ?? defaultBoundMs;
    let timer: NodeJS.Timeout | undefined;
    const running = perTransaction
      ? runCarrying(client, sql, parameters as unknown[], perTransaction)
      : client.query(sql, parameters as unknown[]);
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

/**
 * A pooler's refusal of the settings sent at connect, with what to do about it: PgBouncer
 * answers `unsupported startup parameter: options` when `pooler` was not declared.
 */
export function explainRefusal(error: unknown): unknown {
  const message = error instanceof Error ? error.message : '';
  if (!/unsupported startup parameter/i.test(message)) return error;
  return new InvalidInputError([
    {
      path: 'pooler',
      message: `the server refused the settings sent at connect (${message}), as a connection pooler does; declare it with pooler: 'transaction' (HEADWAY_DATABASE_POOLER=transaction) so that they travel in each transaction instead`,
    },
  ]);
}

function unavailable(error: unknown): unknown {
  if (error instanceof DatabaseUnavailableError || !isTransient(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseUnavailableError(message, error);
}
