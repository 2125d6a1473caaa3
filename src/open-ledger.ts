import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import lockfile from 'proper-lockfile';
import type { Database } from '../schema/database.ts';
import { indexUpcasters } from '../schema/upcast.ts';
import type { Upcaster } from '../schema/upcast.ts';
import { InvalidInputError, StoreBusyError } from './errors.ts';
import { Ledger } from './ledger.ts';
import type { LedgerStore, RunnerLock } from './ledger-store.ts';
import { migrateToLatest } from './migrations.ts';
import { pgliteWakeUps, postgresWakeUps } from './wake-ups.ts';

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
  /**
   * Jobs per projection whose last `project` fold is kept, so reading them again folds
   * only new events (default 32; 0 keeps none).
   */
  foldCacheJobs?: number;
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
  const upcasters = indexUpcasters(options.upcasters ?? []);
  const opened = options.databaseUrl
    ? openPostgres(options.databaseUrl, options)
    : await openPglite(options.dataDir ?? defaultDataDir, options);
  const ledger = new Ledger(opened, upcasters, options.foldCacheJobs ?? 32);
  try {
    if (options.schema) await ensureSchema(opened.db, options.schema);
    if (options.migrate !== false) await migrateToLatest(opened.db, options.schema);
  } catch (error) {
    await ledger.close();
    throw error;
  }
  return ledger;
}

function openPostgres(databaseUrl: string, options: OpenLedgerOptions): LedgerStore {
  // A leaked open transaction would hold every gap-safe reader back (DESIGN §3).
  const settings = ['-c idle_in_transaction_session_timeout=60000'];
  if (options.schema) settings.push(`-c search_path=${options.schema}`);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.poolSize ?? 10,
    options: settings.join(' '),
  });
  // An idle connection dropped by the server must not crash the process; the pool
  // replaces it on the next query.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    location: { store: 'postgres', description: redactUrl(databaseUrl) },
    wakeUps: postgresWakeUps(databaseUrl),
    tryLock: (name) => tryAdvisoryLock(databaseUrl, `headway:${options.schema ?? ''}:${name}`),
    close: () => db.destroy(),
  };
}

/**
 * A session advisory lock on a connection of its own, so that it lasts while the holder
 * lives and is released by the server when the holder's connection dies.
 */
async function tryAdvisoryLock(databaseUrl: string, key: string): Promise<RunnerLock | null> {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'headway-runner',
  });
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
  let release = (): Promise<void> => Promise.resolve();
  if (!inMemory) {
    await mkdir(folder, { recursive: true });
    try {
      // PGlite has no lock of its own; two processes on one folder would corrupt it.
      release = await lockfile.lock(folder, {
        lockfilePath: resolve(folder, 'lock'),
        stale: 15_000,
        update: 5_000,
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'ELOCKED') throw new StoreBusyError(folder);
      throw error;
    }
  }
  const pglite = new PGlite(inMemory ? undefined : resolve(folder, 'pgdata'));
  const db = new Kysely<Database>({
    dialect: new PGliteDialect({
      pglite,
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
      if (held.has(name)) return Promise.resolve(null);
      held.add(name);
      return Promise.resolve({
        lost: new AbortController().signal,
        release: () => {
          held.delete(name);
          return Promise.resolve();
        },
      });
    },
    close: async () => {
      await db.destroy();
      await release();
    },
  };
}

async function ensureSchema(db: Kysely<Database>, schema: string): Promise<void> {
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (error) {
    // Two processes creating the same schema at once: the loser sees a duplicate.
    if ((error as { code?: string }).code !== '23505') throw error;
  }
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
