import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openLedger } from '../src/open-ledger.ts';
import type { OpenLedgerOptions } from '../src/open-ledger.ts';
import type { Ledger } from '../src/ledger.ts';

/** The PostgreSQL server the suites use; the local one unless DATABASE_URL says otherwise. */
export const postgresUrl =
  process.env.DATABASE_URL ??
  process.env.HEADWAY_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/test';

async function postgresReachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (error) {
    return String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const unreachable = await postgresReachable();
if (unreachable !== null) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true requires PostgreSQL at ${postgresUrl}, but: ${unreachable}`);
  }
  console.warn(
    `\n*** SKIPPING the PostgreSQL suites: ${postgresUrl} is unreachable (${unreachable}).\n*** Start a server (docker compose up -d) or set DATABASE_URL. Under CI=true this fails instead.\n`,
  );
}

/** True when the PostgreSQL suites run. */
export const postgresAvailable = unreachable === null;

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
