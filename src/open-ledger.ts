import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../schema/database.ts';
import { indexUpcasters } from '../schema/upcast.ts';
import type { Upcaster } from '../schema/upcast.ts';
import type { ClassificationRule } from '../projections/failure-classification.ts';
import { InvalidInputError } from './errors.ts';
import { parseFailureRules } from './append/failure-rules.ts';
import { Ledger } from './ledger.ts';
import type { LedgerStore, RunnerLock } from './store/ledger-store.ts';
import { prepareSchema } from './store/migrations.ts';
import {
  boundedPool,
  clientConfig,
  defaultTimeouts,
  sessionSettings,
} from './store/postgres-pool.ts';
import type { PostgresTimeouts } from './store/postgres-pool.ts';
import { acquireStoreLock } from './store/store-lock.ts';
import type { StoreLock } from './store/store-lock.ts';
import { pgliteWakeUps, postgresWakeUps } from './store/wake-ups.ts';

/** How to open a ledger. With no `databaseUrl`, the embedded PGlite store is used. */
export interface OpenLedgerOptions {
  /** A PostgreSQL URL; selects the `pg` store. */
  databaseUrl?: string;
  /** The embedded store's folder (default `./.headway`), or `memory://` for a throwaway one. */
  dataDir?: string;
  /** A PostgreSQL schema to keep the tables in (created if missing). */
  schema?: string;
  /** Upcasters for events written by older schema versions. */
  upcasters?: readonly Upcaster[];
  /** Most connections the PostgreSQL pool opens (default 10). */
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
   * Jobs per projection whose last `project` fold is kept, so reading them again folds
   * only new events (default 32; 0 keeps none).
   */
  foldCacheJobs?: number;
  /**
   * Rules that classify an `item.failed` or `job.failed` sent without a category, before
   * the defaults. The category and `retryable` they give are written into the stored event,
   * so later folds and rebuilds read the same answer whatever the rules become. Without
   * this option, failures are stored as sent and classified by the defaults when read.
   */
  failureRules?: readonly ClassificationRule[];
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
  // Checked before the store opens: a bad rule must not leave connections behind.
  const failureRules =
    options.failureRules === undefined
      ? undefined
      : parseFailureRules(options.failureRules, 'failureRules');
  const upcasters = indexUpcasters(options.upcasters ?? []);
  const opened = options.databaseUrl
    ? openPostgres(options.databaseUrl, options)
    : await openPglite(options.dataDir ?? defaultDataDir, options);
  const ledger = new Ledger(opened, upcasters, options.foldCacheJobs ?? 32, failureRules);
  try {
    if (options.migrate !== false) await prepareSchema(opened.db, options.schema);
  } catch (error) {
    await ledger.close();
    throw error;
  }
  return ledger;
}

function openPostgres(databaseUrl: string, options: OpenLedgerOptions): LedgerStore {
  const timeouts = { ...defaultTimeouts, ...options.timeouts };
  const applicationName = options.applicationName ?? 'headway';
  const pool = boundedPool(
    {
      connectionString: databaseUrl,
      max: options.poolSize ?? 10,
      application_name: applicationName,
      options: sessionSettings(timeouts, options.schema),
    },
    timeouts,
  );
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const ownClient = (role: string) =>
    clientConfig(databaseUrl, timeouts, `${applicationName}-${role}`, options.schema);
  return {
    db,
    location: { store: 'postgres', description: redactUrl(databaseUrl) },
    wakeUps: postgresWakeUps(() => ownClient('listen')),
    tryLock: (name) =>
      tryAdvisoryLock(ownClient('runner'), `headway:${options.schema ?? ''}:${name}`),
    close: () => db.destroy(),
  };
}

/**
 * A session advisory lock on a connection of its own, so that it lasts while the holder
 * lives and is released by the server when the holder's connection dies.
 */
async function tryAdvisoryLock(config: pg.ClientConfig, key: string): Promise<RunnerLock | null> {
  const client = new pg.Client(config);
  const lost = new AbortController();
  const onLost = () => lost.abort(new Error(`lost the runner lock ${key}`));
  client.on('error', onLost);
  client.on('end', onLost);
  await client.connect();
  try {
    const result = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
      [key],
    );
    if (!result.rows[0]?.locked) {
      await client.end();
      return null;
    }
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return {
    lost: lost.signal,
    // Ending the session releases its advisory locks.
    release: () => client.end().catch(() => undefined),
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
