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
import { migrateToLatest } from './migrations.ts';

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
  const ledger = new Ledger(opened.db, opened.location, upcasters, opened.close);
  try {
    if (options.schema) await ensureSchema(opened.db, options.schema);
    if (options.migrate !== false) await migrateToLatest(opened.db, options.schema);
  } catch (error) {
    await ledger.close();
    throw error;
  }
  return ledger;
}

interface OpenedStore {
  db: Kysely<Database>;
  location: Ledger['location'];
  close: () => Promise<void>;
}

function openPostgres(databaseUrl: string, options: OpenLedgerOptions): OpenedStore {
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
    close: () => db.destroy(),
  };
}

async function openPglite(dataDir: string, options: OpenLedgerOptions): Promise<OpenedStore> {
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
  return {
    db,
    location: { store: 'pglite', description: folder },
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
