import { readdir, readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { Migrator } from 'kysely/migration';
import type { Migration, MigrationProvider } from 'kysely/migration';
import type { Database } from '../schema/database.ts';

const migrationsFolder = new URL('../schema/migrations/', import.meta.url);

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
    const failed = results?.find((result) => result.status === 'Error');
    throw new Error(
      `Migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`,
      {
        cause: error,
      },
    );
  }
  return (results ?? []).map((result) => result.migrationName);
}
