import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import type { Database } from '../schema/database.ts';
import { indexUpcasters } from '../schema/upcast.ts';
import type { Upcaster } from '../schema/upcast.ts';
import type { ClassificationRule } from '../projections/failure-classification.ts';
import { InvalidInputError } from './errors.ts';
import { parseFailureRules } from './append/failure-rules.ts';
import { Ledger } from './ledger.ts';
import type { LedgerStore } from './store/ledger-store.ts';
import type { ReplicaStore } from './store/replica.ts';
import { prepareSchema } from './store/migrations.ts';
import {
  boundedPool,
  clientConfig,
  defaultTimeouts,
  poolerModes,
  sessionSettings,
  transactionSettings,
} from './store/postgres-pool.ts';
import type { PoolerMode, PostgresTimeouts } from './store/postgres-pool.ts';
import { tryAdvisoryLock, tryTransactionLock } from './store/runner-locks.ts';
import { acquireStoreLock } from './store/store-lock.ts';
import type { StoreLock } from './store/store-lock.ts';
import { conditionSettings } from './alerts/condition-settings.ts';
import type { ConditionSettings } from '../projections/job-conditions.ts';
import { pgliteWakeUps, pollingWakeUps, postgresWakeUps } from './store/wake-ups.ts';

/** How to open a ledger. With no `databaseUrl`, the embedded PGlite store is used. */
export interface OpenLedgerOptions {
  /** A PostgreSQL URL; selects the `pg` store. */
  databaseUrl?: string;
  /**
   * `'transaction'` when `databaseUrl` reaches PostgreSQL through a pooler in transaction
   * mode (PgBouncer's `pool_mode = transaction`, and the like); default `'none'`, a direct
   * connection. In that mode nothing is sent at connect: the statement and idle-transaction
   * bounds and the search path are set in each transaction (`SET LOCAL`), and what needs a
   * session of its own (LISTEN wake-ups, projection runner locks) goes over
   * `listenDatabaseUrl`. Without one, live reads poll the log (every 250 ms) and a runner
   * holds its lock in an open transaction through the pooler, which pins one server
   * connection while this process runs the projection.
   */
  pooler?: PoolerMode;
  /**
   * A PostgreSQL URL that reaches the same database directly (not through a transaction
   * pooler), for what needs a session of its own: the LISTEN connection of wake-ups and the
   * session advisory locks of projection runners. Default: `databaseUrl`, unless `pooler`
   * is `'transaction'`.
   */
  listenDatabaseUrl?: string;
  /**
   * A PostgreSQL URL of a hot standby of `databaseUrl`'s database (streaming replication).
   * Reads, job views, the timeline and live streams go there; appends, resume and the
   * projection runners stay on the primary. A standby cannot LISTEN, so live reads there
   * poll (every 250 ms). Reached like `databaseUrl` (the same `pooler` mode). See
   * `ledger.readsAfter` for reading one's own appends, and `ledger.replication()` for lag.
   */
  readDatabaseUrl?: string;
  /** The embedded store's folder (default `./.headway`), or `memory://` for a throwaway one. */
  dataDir?: string;
  /** A PostgreSQL schema to keep the tables in (created if missing). */
  schema?: string;
  /** Upcasters for events written by older schema versions. */
  upcasters?: readonly Upcaster[];
  /** Most connections the PostgreSQL pool opens (default 10); the replica's pool, as many. */
  poolSize?: number;
  /** Run migrations on open (default true). */
  migrate?: boolean;
  /** Bounds on waits for PostgreSQL: connect, query, statement, keepalive. */
  timeouts?: Partial<PostgresTimeouts>;
  /**
   * The name PostgreSQL shows for this ledger's connections (default `headway`); its LISTEN
   * and runner-lock connections add `-listen` and `-runner`.
   */
  applicationName?: string;
  /**
   * Jobs per projection whose last `project` fold, and whose last status read's state, is
   * kept, so reading them again folds only new events (default 32; 0 keeps none).
   */
  foldCacheJobs?: number;
  /**
   * Rules that classify an `item.failed` or `job.failed` sent without a category, before
   * the defaults. The category and `retryable` they give are written into the stored event,
   * so later folds and rebuilds read the same answer whatever the rules become. Without
   * this option, failures are stored as sent and classified by the defaults when read.
   */
  failureRules?: readonly ClassificationRule[];
  /**
   * How conditions are judged where a job sets none: the stall threshold, the failure rate
   * threshold, and how thresholds are learned (docs/alerts.md). Defaults:
   * `defaultConditionSettings`.
   */
  conditions?: Partial<ConditionSettings>;
}

/** The default folder of the embedded store. */
export const defaultDataDir = '.headway';

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens a ledger on PostgreSQL (`databaseUrl`) or on the embedded PGlite store, and
 * brings its schema up to date.
 *
 * @example
 * const ledger = await openLedger();                                   // ./.headway
 * const shared = await openLedger({ databaseUrl: process.env.DATABASE_URL });
 * const ruled = await openLedger({
 *   failureRules: [{ match: { messagePattern: 'quota exceeded' }, category: 'quota', retryable: true }],
 * });
 */
export async function openLedger(options: OpenLedgerOptions = {}): Promise<Ledger> {
  if (options.schema !== undefined && !schemaName.test(options.schema)) {
    throw new InvalidInputError([
      {
        path: 'schema',
        message: `expected a lower-case SQL identifier, received ${JSON.stringify(options.schema)}`,
      },
    ]);
  }
  checkConnectionOptions(options);
  // Checked before the store opens: a bad rule must not leave connections behind.
  const failureRules =
    options.failureRules === undefined
      ? undefined
      : parseFailureRules(options.failureRules, 'failureRules');
  const conditions = conditionSettings(options.conditions);
  const upcasters = indexUpcasters(options.upcasters ?? []);
  const opened = options.databaseUrl
    ? openPostgres(options.databaseUrl, options)
    : await openPglite(options.dataDir ?? defaultDataDir, options);
  const ledger = new Ledger(
    opened,
    upcasters,
    options.foldCacheJobs ?? 32,
    failureRules,
    conditions,
  );
  try {
    if (options.migrate !== false) await prepareSchema(opened.db, options.schema);
  } catch (error) {
    await ledger.close();
    throw error;
  }
  return ledger;
}

function checkConnectionOptions(options: OpenLedgerOptions): void {
  if (options.pooler !== undefined && !poolerModes.includes(options.pooler)) {
    throw new InvalidInputError([
      {
        path: 'pooler',
        message: `expected one of ${poolerModes.map((mode) => `'${mode}'`).join(', ')}, received ${JSON.stringify(options.pooler)}`,
      },
    ]);
  }
  for (const path of ['listenDatabaseUrl', 'readDatabaseUrl'] as const) {
    if (options[path] !== undefined && !options.databaseUrl) {
      throw new InvalidInputError([
        {
          path,
          message: 'expected only with databaseUrl (the embedded store needs no connection)',
        },
      ]);
    }
  }
}

function openPostgres(databaseUrl: string, options: OpenLedgerOptions): LedgerStore {
  const timeouts = { ...defaultTimeouts, ...options.timeouts };
  const applicationName = options.applicationName ?? 'headway';
  const pooler = options.pooler ?? 'none';
  const pooled = pooler === 'transaction';
  const kyselyOver = (url: string, name: string) =>
    new Kysely<Database>({
      dialect: new PostgresDialect({
        pool: boundedPool(
          {
            connectionString: url,
            max: options.poolSize ?? 10,
            application_name: name,
            ...(pooled ? {} : { options: sessionSettings(timeouts, options.schema) }),
          },
          timeouts,
          pooled ? transactionSettings(timeouts, options.schema) : undefined,
        ),
      }),
    });
  const db = kyselyOver(databaseUrl, applicationName);
  const replica: ReplicaStore | undefined = options.readDatabaseUrl
    ? {
        db: kyselyOver(options.readDatabaseUrl, `${applicationName}-read`),
        description: redactUrl(options.readDatabaseUrl),
        wakeUps: pollingWakeUps(),
      }
    : undefined;
  // What needs a session of its own never goes through a transaction pooler.
  const sessionUrl = options.listenDatabaseUrl ?? (pooled ? undefined : databaseUrl);
  const lockKey = (name: string) => `headway:${options.schema ?? ''}:${name}`;
  let description = redactUrl(databaseUrl);
  if (pooled) {
    description += sessionUrl
      ? ` (transaction pooler; LISTEN and runner locks over ${redactUrl(sessionUrl)})`
      : ' (transaction pooler; live reads poll, runner locks in open transactions)';
  }
  if (replica) description += ` (reads from the replica ${replica.description})`;
  const ownClient = (url: string, role: string, mode: PoolerMode = 'none') =>
    clientConfig(url, timeouts, `${applicationName}-${role}`, options.schema, mode);
  return {
    db,
    location: { store: 'postgres', description },
    wakeUps: sessionUrl ? postgresWakeUps(() => ownClient(sessionUrl, 'listen')) : pollingWakeUps(),
    tryLock: (name) =>
      sessionUrl
        ? tryAdvisoryLock(ownClient(sessionUrl, 'runner'), lockKey(name))
        : tryTransactionLock(
            ownClient(databaseUrl, 'runner', 'transaction'),
            lockKey(name),
            transactionSettings(timeouts, options.schema),
          ),
    ...(replica ? { replica } : {}),
    close: async () => {
      try {
        await replica?.db.destroy();
      } finally {
        await db.destroy();
      }
    },
  };
}

async function openPglite(dataDir: string, options: OpenLedgerOptions): Promise<LedgerStore> {
  const inMemory = dataDir === 'memory://';
  const folder = inMemory ? dataDir : resolve(dataDir);
  let lock: StoreLock | null = null;
  if (!inMemory) {
    await mkdir(folder, { recursive: true });
    // PGlite has no lock of its own; two processes on one folder would corrupt it.
    lock = await acquireStoreLock(folder);
  }
  const lost = lock?.lost ?? new AbortController().signal;
  const pglite = new PGlite(inMemory ? undefined : resolve(folder, 'pgdata'));
  const db = new Kysely<Database>({
    dialect: new PGliteDialect({
      pglite: refusingAfterLoss(pglite, lost),
      ...(options.schema
        ? {
            onCreateConnection: async (connection) => {
              await connection.executeQuery(
                sql`set search_path to ${sql.id(options.schema!)}`.compile(db),
              );
            },
          }
        : {}),
    }),
  });
  // The folder lock keeps other processes out, so runner locks need only be in-process.
  const held = new Set<string>();
  return {
    db,
    location: { store: 'pglite', description: folder },
    wakeUps: pgliteWakeUps(pglite),
    tryLock: (name) => {
      if (lost.aborted) return Promise.reject(lost.reason as Error);
      if (held.has(name)) return Promise.resolve(null);
      held.add(name);
      return Promise.resolve({
        // Lost with the folder lock.
        lost,
        release: () => {
          held.delete(name);
          return Promise.resolve();
        },
      });
    },
    close: async () => {
      try {
        await db.destroy();
      } finally {
        await lock?.release();
      }
    },
  };
}

const refusedAfterLoss = new Set(['query', 'exec', 'transaction', 'close']);

/**
 * The PGlite instance, refusing every query with the StoreLockLostError once the folder
 * lock is lost (a transaction under way finishes). Its `close` then does nothing: PGlite's
 * shutdown checkpoint would write to a folder another process may have opened, and what
 * was committed is in its write-ahead log already.
 */
function refusingAfterLoss(pglite: PGlite, lost: AbortSignal): PGlite {
  return new Proxy(pglite, {
    get(target, property) {
      if (lost.aborted && typeof property === 'string' && refusedAfterLoss.has(property)) {
        // Thrown, not rejected: Kysely would wait forever for a transaction that never began.
        return property === 'close'
          ? () => Promise.resolve()
          : () => {
              throw lost.reason as Error;
            };
      }
      const value: unknown = Reflect.get(target, property, target);
      // Bound to the instance: PGlite's methods use private fields, which the proxy lacks.
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres (unparsable URL)';
  }
}
