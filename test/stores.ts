import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { openLedger } from '../src/open-ledger.ts';
import type { OpenLedgerOptions } from '../src/open-ledger.ts';
import type { Ledger } from '../src/ledger.ts';

/** The PostgreSQL server the suites use; the local one unless DATABASE_URL says otherwise. */
const serverUrl =
  process.env.DATABASE_URL ??
  process.env.HEADWAY_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/test';

// The server is shared with other programs: each test file (each vitest worker) works in a
// database of its own, so whatever it counts, locks or terminates there is its own.
const databaseName = `hw_test_${randomBytes(6).toString('hex')}`;

/**
 * This test file's own database on the server: use it for ledgers and admin connections
 * alike. It exists from the file's first test to its last (see the hooks below).
 */
export const postgresUrl = (() => {
  const url = new URL(serverUrl);
  url.pathname = `/${databaseName}`;
  return url.toString();
})();

/** Runs one statement on the server's own database (CREATE/DROP DATABASE run outside ours). */
async function onServer(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Null when the server answers and may create databases, else why not. */
async function serverProblem(): Promise<string | null> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ allowed: boolean }>(
      'select rolcreatedb or rolsuper as allowed from pg_roles where rolname = current_user',
    );
    return rows[0]?.allowed ? null : 'its role may not create databases (CREATEDB)';
  } catch (error) {
    return String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const unavailable = await serverProblem();
if (unavailable !== null) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true requires PostgreSQL at ${serverUrl}, but: ${unavailable}`);
  }
  console.warn(
    `\n*** SKIPPING the PostgreSQL suites: ${serverUrl} is unusable (${unavailable}).\n*** Start a server (docker compose up -d) or set DATABASE_URL. Under CI=true this fails instead.\n`,
  );
}

/** True when the PostgreSQL suites run. */
export const postgresAvailable = unavailable === null;

if (postgresAvailable) {
  // File-level hooks, registered when a test file imports this module: a file whose tests
  // are all skipped runs neither, so it creates nothing and leaves nothing behind.
  let created = false;
  beforeAll(async () => {
    // template0 takes no connections, so other programs' sessions cannot block the copy.
    await onServer(`create database ${databaseName} template template0`);
    created = true;
  });
  afterAll(async () => {
    // FORCE ends connections a failed test left open; only ever on the database made above.
    if (created) await onServer(`drop database if exists ${databaseName} with (force)`);
  });
}

/** A store the contract suite runs against. */
export interface StoreUnderTest {
  name: 'pglite' | 'postgres';
  available: boolean;
  /** Opens a fresh, empty ledger: its own PGlite instance or its own PostgreSQL schema. */
  open(options?: OpenLedgerOptions): Promise<Ledger>;
  /** Drops what `open` created. */
  cleanup(): Promise<void>;
}

/** Every store, PGlite first; call `cleanup` in afterAll. */
export function storesUnderTest(): StoreUnderTest[] {
  const schemas: string[] = [];
  return [
    {
      name: 'pglite',
      available: true,
      open: (options = {}) => openLedger({ dataDir: 'memory://', ...options }),
      cleanup: () => Promise.resolve(),
    },
    {
      name: 'postgres',
      available: postgresAvailable,
      open: (options = {}) => {
        const schema = options.schema ?? `hw_test_${randomBytes(6).toString('hex')}`;
        schemas.push(schema);
        return openLedger({ databaseUrl: postgresUrl, schema, ...options });
      },
      cleanup: async () => {
        if (schemas.length === 0) return;
        const client = new pg.Client({ connectionString: postgresUrl });
        await client.connect();
        try {
          for (const schema of schemas.splice(0)) {
            await client.query(`drop schema if exists ${schema} cascade`);
          }
        } finally {
          await client.end();
        }
      },
    },
  ];
}
