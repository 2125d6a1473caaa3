import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The server the benchmark runs against when `DATABASE_URL` is not set. */
export const defaultDatabaseUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A throwaway database on the server; `drop()` is safe to call more than once. */
export interface ScratchDatabase {
  name: string;
  url: string;
  serverVersion: string;
  drop(): Promise<void>;
}

/**
 * Creates `headway_bench_<hex>` next to the database `adminUrl` points at, so the
 * benchmark never touches anyone's data and leaves nothing behind.
 */
export async function createScratchDatabase(adminUrl: string): Promise<ScratchDatabase> {
  const name = `headway_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  let serverVersion: string;
  try {
    const version = await admin.query<{ server_version: string }>('show server_version');
    // "15.20 (Debian 15.20-0+deb12u1)" -> "15.20"
    serverVersion = version.rows[0]!.server_version.split(' ')[0]!;
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    serverVersion,
    drop: () => (dropped ??= dropDatabase(adminUrl, name)),
  };
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // FORCE ends connections a failed workload may have left open (PostgreSQL 13+).
    await admin.query(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}
