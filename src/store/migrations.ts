import { readdir, readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { Migration, MigrationProvider } from 'kysely/migration';
import type { Database } from '../../schema/database.ts';
import { isTransient } from '../errors.ts';
import { withQueryTimeout } from './postgres-pool.ts';
import { regrantAppRoles } from './database-roles.ts';

const migrationsFolder = new URL('../../schema/migrations/', import.meta.url);

// PGlite runs parameterised queries through the extended protocol, which takes one
// statement at a time; a DO block that EXECUTEs the file runs it whole on both stores.
const outerTag = '$headway_migration$';
const innerTag = '$headway_sql$';

/** Reads numbered `.sql` files from `schema/migrations/` as Kysely migrations. */
export class SqlFileMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(migrationsFolder)).filter((file) => file.endsWith('.sql')).sort();
    const migrations: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(new URL(file, migrationsFolder), 'utf8');
      if (text.includes(outerTag) || text.includes(innerTag)) {
        throw new Error(`${file} must not contain ${outerTag} or ${innerTag}`);
      }
      migrations[file.replace(/\.sql$/, '')] = {
        up: async (db) => {
          await sql
            .raw(`DO ${outerTag} BEGIN EXECUTE ${innerTag}${text}${innerTag}; END ${outerTag}`)
            .execute(db);
        },
      };
    }
    return migrations;
  }
}

/**
 * Brings the schema up to date. Safe when several processes open at once: Kysely's
 * migrator holds a transaction-scoped advisory lock while it works.
 */
export async function migrateToLatest(db: Kysely<Database>, schema?: string): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new SqlFileMigrationProvider(),
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    // An unreachable database is no migration's fault; callers may wait and try again.
    if (isTransient(error) && error instanceof Error) throw error;
    const failed = results?.find((result) => result.status === 'Error');
    const what = failed ? `Migration ${failed.migrationName} failed` : 'Migrating failed';
    throw new Error(`${what}: ${error instanceof Error ? error.message : JSON.stringify(error)}`, {
      cause: error,
    });
  }
  return (results ?? []).map((result) => result.migrationName);
}

/**
 * Creates the schema (when one is named) and brings it up to date, with no bound on how
 * long a migration may take (an index on a big log can rightly take minutes).
 */
export async function prepareSchema(db: Kysely<Database>, schema?: string): Promise<void> {
  await withQueryTimeout(0, async () => {
    if (schema) await ensureSchema(db, schema);
    const applied = await migrateToLatest(db, schema);
    // Tables a migration created reach the app roles only by a new grant.
    if (applied.length > 0) await regrantAppRoles(db);
  });
}

async function ensureSchema(db: Kysely<Database>, schema: string): Promise<void> {
  // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema is
  // there, which an owner role given only its schema does not have.
  const { rows } = await sql`select 1 from pg_namespace where nspname = ${schema}`.execute(db);
  if (rows.length > 0) return;
  try {
    await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  } catch (error) {
    // Two processes creating the same schema at once: the loser sees a duplicate.
    if ((error as { code?: string }).code !== '23505') throw error;
  }
}
