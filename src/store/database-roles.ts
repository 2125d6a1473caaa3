import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { HeadwayError, InvalidInputError } from '../errors.ts';

/**
 * The ledger's tables in its schema. The app role reads all of them (the Kysely migration
 * tables too, so that opening a ledger can see the schema is current).
 */
export const ledgerTables = [
  'events',
  'streams',
  'projection_checkpoints',
  'projection_states',
  'archives',
  'archived_jobs',
  'webhooks',
  'webhook_deliveries',
  'kysely_migration',
  'kysely_migration_lock',
] as const;

/** The tables the app role also writes: the persisted projections' and the webhooks' (0003, 0009). */
export const appWritableTables = [
  'projection_checkpoints',
  'projection_states',
  'webhooks',
  'webhook_deliveries',
] as const;

/** The one way the app role writes the log: `headway_append`, which runs as its owner. */
const appendFunction = 'headway_append';

const roleName = /^[a-z_][a-z0-9_]{0,62}$/;

type Db = Kysely<Database> | Transaction<Database>;

/** Two PostgreSQL roles: one that migrates and owns, one that serves. */
export interface LedgerRoles {
  /** Owns the schema's ledger tables and functions; runs `headway migrate`. */
  owner: string;
  /** Reads, appends through `headway_append`, writes the projection tables; runs `serve`. */
  app: string;
  ownerPassword?: string;
  appPassword?: string;
}

/**
 * Creates the two roles if they are missing (LOGIN, no other attribute), sets the passwords
 * given, and lets the owner create objects in the current schema. Throws when the app role
 * could become the owner or skip triggers (a superuser, CREATEROLE, or a member of the
 * owner), since then no grant would protect the log. Run as a superuser.
 *
 * @example
 * await ensureRoles(admin.db, { owner: 'headway_owner', app: 'headway_app' });
 */
export async function ensureRoles(db: Db, roles: LedgerRoles): Promise<void> {
  checkName('owner', roles.owner);
  checkName('app', roles.app);
  if (roles.owner === roles.app) {
    throw new InvalidInputError([
      { path: 'app', message: `expected a role other than the owner, received '${roles.app}'` },
    ]);
  }
  for (const [name, password] of [
    [roles.owner, roles.ownerPassword],
    [roles.app, roles.appPassword],
  ] as const) {
    const exists = await sql<{ found: number }>`
      select 1 as found from pg_roles where rolname = ${name}`.execute(db);
    if (exists.rows.length === 0) {
      try {
        await sql`create role ${sql.id(name)} login`.execute(db);
      } catch (error) {
        // Another run created it at the same moment.
        if ((error as { code?: string }).code !== '42710') throw error;
      }
    }
    if (password !== undefined) {
      await sql`alter role ${sql.id(name)} password ${sql.lit(password)}`.execute(db);
    }
  }
  await checkAppRole(db, roles.app, roles.owner);
  await sql`grant usage, create on schema ${sql.id(await currentSchema(db))} to ${sql.id(roles.owner)}`.execute(
    db,
  );
}

/**
 * Makes `owner` the owner of the ledger's tables (with their sequences and indexes) and of
 * its `headway_*` functions in the current schema, so that it can migrate them and so that
 * `headway_append` appends with its rights.
 */
export async function transferOwnership(db: Db, owner: string): Promise<void> {
  checkName('owner', owner);
  const schema = await currentSchema(db);
  for (const table of await existingTables(db, ledgerTables)) {
    await sql`alter table ${sql.id(schema, table)} owner to ${sql.id(owner)}`.execute(db);
  }
  // A partitioned table's owner is not its partitions' (migration 0008): retention, run by
  // the owner, detaches and drops them.
  const partitions = await sql<{ partition: string }>`
    select i.inhrelid::regclass::text as partition
      from pg_inherits i
      join pg_class parent on parent.oid = i.inhparent
     where parent.relnamespace = current_schema()::regnamespace and parent.relname = 'events'`.execute(
    db,
  );
  for (const { partition } of partitions.rows) {
    await sql`alter table ${sql.raw(partition)} owner to ${sql.id(owner)}`.execute(db);
  }
  const functions = await sql<{ signature: string }>`
    select p.oid::regprocedure::text as signature
      from pg_proc p
     where p.pronamespace = current_schema()::regnamespace
       and p.proname like 'headway\_%'
       and p.proowner <> (select oid from pg_roles where rolname = ${owner})`.execute(db);
  for (const { signature } of functions.rows) {
    // regprocedure prints a name the current search path resolves, quoted where needed.
    await sql`alter function ${sql.raw(signature)} owner to ${sql.id(owner)}`.execute(db);
  }
}

/**
 * Grants `role` exactly what the app needs on the current schema's ledger, and takes back
 * anything else it held on those objects: USAGE on the schema, SELECT on every ledger
 * table, INSERT, UPDATE and DELETE on the projection tables, EXECUTE on `headway_append`.
 * No write on `events` or `streams`, no CREATE, no ownership: the app cannot alter, drop or
 * disable what guards the log. Safe to run again; `headway migrate` does after each
 * migration. Run as the tables' owner (or a superuser).
 *
 * @example
 * await grantAppRole(ledger.db, 'headway_app');
 */
export async function grantAppRole(db: Kysely<Database>, role: string): Promise<void> {
  checkName('app', role);
  await db.transaction().execute(async (trx) => {
    const schema = await currentSchema(trx);
    const ownerName = await ledgerOwner(trx);
    if (ownerName === undefined) {
      throw new HeadwayError(
        'invalid_input',
        `Schema '${schema}' holds no ledger: expected an events table there, received none; run headway migrate first`,
      );
    }
    await checkAppRole(trx, role, ownerName);

    const tables = await existingTables(trx, ledgerTables);
    const writable = tables.filter((table) =>
      (appWritableTables as readonly string[]).includes(table),
    );
    const app = sql.id(role);
    const tableList = sql.join(tables.map((table) => sql.id(schema, table)));
    await sql`revoke all on table ${tableList} from ${app}`.execute(trx);
    const sequences = await sql<{ sequence: string }>`
      select s.oid::regclass::text as sequence
        from pg_class s
        join pg_depend d on d.objid = s.oid and d.classid = 'pg_class'::regclass
                        and d.refclassid = 'pg_class'::regclass
        join pg_class t on t.oid = d.refobjid
       where s.relkind = 'S' and t.relnamespace = current_schema()::regnamespace
         and t.relname in (${sql.join(tables)})`.execute(trx);
    for (const { sequence } of sequences.rows) {
      await sql`revoke all on sequence ${sql.raw(sequence)} from ${app}`.execute(trx);
    }
    await sql`revoke create on schema ${sql.id(schema)} from ${app}`.execute(trx);
    await sql`grant usage on schema ${sql.id(schema)} to ${app}`.execute(trx);
    await sql`grant select on table ${tableList} to ${app}`.execute(trx);
    if (writable.length > 0) {
      await sql`grant insert, update, delete on table ${sql.join(
        writable.map((table) => sql.id(schema, table)),
      )} to ${app}`.execute(trx);
    }
    const functions = await sql<{ signature: string; name: string }>`
      select p.oid::regprocedure::text as signature, p.proname as name
        from pg_proc p
       where p.pronamespace = current_schema()::regnamespace and p.proname like 'headway\_%'`.execute(
      trx,
    );
    for (const { signature, name } of functions.rows) {
      const target = sql.raw(signature);
      await sql`revoke all on function ${target} from ${app}`.execute(trx);
      if (name === appendFunction) {
        await sql`grant execute on function ${target} to ${app}`.execute(trx);
      }
    }
  });
}

/**
 * The app roles of the current schema's ledger: the roles other than its owner that may
 * run `headway_append`. `headway migrate` grants to them again after migrating.
 */
export async function appRoles(db: Db): Promise<string[]> {
  const { rows } = await sql<{ role: string }>`
    select distinct r.rolname as role
      from pg_proc p
      cross join lateral aclexplode(p.proacl) a
      join pg_roles r on r.oid = a.grantee
     where p.pronamespace = current_schema()::regnamespace and p.proname = ${appendFunction}
       and a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner
     order by 1`.execute(db);
  return rows.map((row) => row.role);
}

/**
 * After a migration: grants every app role of the ledger again, so that tables and
 * functions a migration created are covered too. When a superuser ran the migration, what
 * it created is first given to the ledger's owner. Returns the roles granted.
 */
export async function regrantAppRoles(db: Kysely<Database>): Promise<string[]> {
  const roles = await appRoles(db);
  const owner = await ledgerOwner(db);
  if (roles.length === 0 || owner === undefined) return [];
  const runner = await sql<{ superuser: boolean; name: string; owns: boolean }>`
    select rolsuper as superuser, rolname as name,
           pg_has_role(current_user, ${owner}, 'USAGE') as owns
      from pg_roles where rolname = current_user`.execute(db);
  const { superuser = false, name, owns = false } = runner.rows[0] ?? {};
  // Anyone else (an app role running migrate with nothing to do) could grant nothing.
  if (!owns) return [];
  if (superuser && name !== owner) await transferOwnership(db, owner);
  for (const role of roles) await grantAppRole(db, role);
  return roles;
}

/** The owner of the current schema's events table, or undefined before the first migration. */
export async function ledgerOwner(db: Db): Promise<string | undefined> {
  const { rows } = await sql<{ owner: string }>`
    select pg_get_userbyid(c.relowner) as owner
      from pg_class c
     where c.relnamespace = current_schema()::regnamespace and c.relname = 'events'`.execute(db);
  return rows[0]?.owner;
}

/** The schema the connection's search path puts first: where the ledger's tables are. */
export async function currentSchema(db: Db): Promise<string> {
  const { rows } = await sql<{ schema: string | null }>`
    select current_schema() as schema`.execute(db);
  const schema = rows[0]?.schema;
  if (!schema) {
    throw new HeadwayError(
      'invalid_input',
      'No current schema: expected a search path naming an existing schema; pass --schema',
    );
  }
  return schema;
}

/** Refuses an app role that could get round the grants. */
async function checkAppRole(db: Db, app: string, owner: string): Promise<void> {
  const { rows } = await sql<{
    exists: boolean;
    superuser: boolean;
    createrole: boolean;
    member: boolean;
  }>`
    select count(r.*) > 0 as exists,
           coalesce(bool_or(r.rolsuper), false) as superuser,
           coalesce(bool_or(r.rolcreaterole), false) as createrole,
           coalesce(bool_or(pg_has_role(r.oid, ${owner}, 'MEMBER')), false) as member
      from pg_roles r where r.rolname = ${app}`.execute(db);
  const found = rows[0]!;
  const problem = !found.exists
    ? 'a role that does not exist (headway roles creates it)'
    : found.superuser
      ? 'a superuser, which passes every grant and may disable triggers'
      : found.createrole
        ? 'a role with CREATEROLE, which may make itself a member of the owner'
        : found.member
          ? `a member of the owner '${owner}', which may act as it`
          : undefined;
  if (problem) {
    throw new HeadwayError(
      'invalid_input',
      `App role '${app}': expected a plain login role without the owner's rights, received ${problem}`,
    );
  }
}

async function existingTables(db: Db, names: readonly string[]): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.relname as name
      from pg_class c
     where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p')
       and c.relname in (${sql.join(names)})`.execute(db);
  return names.filter((name) => rows.some((row) => row.name === name));
}

function checkName(path: string, name: string): void {
  if (!roleName.test(name)) {
    throw new InvalidInputError([
      {
        path,
        message: `expected a lower-case SQL identifier as a role name, received ${JSON.stringify(name)}`,
      },
    ]);
  }
}
