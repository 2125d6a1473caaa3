import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { runHeadway } from './cli-runner.ts';
import { postgresAvailable, postgresUrl } from './stores.ts';

// Roles belong to the whole server, so every name here is this run's own, and afterAll
// drops them with what they own.
const suffix = randomBytes(5).toString('hex');
const owner = `hw_test_owner_${suffix}`;
const app = `hw_test_app_${suffix}`;
const schema = `hw_test_privileges_${suffix}`;
const ownerPassword = randomBytes(12).toString('hex');
const appPassword = randomBytes(12).toString('hex');

/** The test server's URL, logged in as another role. */
function urlAs(role: string, password: string): string {
  const url = new URL(postgresUrl);
  url.username = role;
  url.password = password;
  return url.toString();
}

const ownerUrl = urlAs(owner, ownerPassword);
const appUrl = urlAs(app, appPassword);

/** Runs `headway` against the test server in this suite's schema. */
const headway = (url: string, ...args: string[]) =>
  runHeadway(['--database-url', url, '--schema', schema, ...args]);

async function asAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const started: EventInput = {
  type: 'job.started',
  data: { name: 'crawl', kind: 'crawl', project: 'web', total: 2 },
};
const completed = (itemId: string): EventInput => ({
  type: 'item.completed',
  data: { itemId, durationMs: 5 },
});

describe.skipIf(!postgresAvailable)('PostgreSQL roles: the app role cannot change the log', () => {
  let appClient: pg.Client;
  let ledger: Ledger;

  beforeAll(async () => {
    const roles = await runHeadway([
      '--database-url',
      postgresUrl,
      '--schema',
      schema,
      'roles',
      '--owner',
      owner,
      '--app',
      app,
      '--owner-password',
      ownerPassword,
      '--app-password',
      appPassword,
    ]);
    expect(roles.stderr).toBe('');
    expect(roles.code).toBe(0);
    expect(roles.stdout).toContain(`owner ${owner}`);

    // Migrating as the owner grants the app role again, new tables included.
    const migrate = await headway(ownerUrl, 'migrate');
    expect(migrate.stderr).toBe('');
    expect(migrate.stdout).toContain(`Granted the app role's privileges to ${app}.`);

    appClient = new pg.Client({ connectionString: appUrl, options: `-c search_path=${schema}` });
    await appClient.connect();
    ledger = await openLedger({ databaseUrl: appUrl, migrate: false, schema });
  }, 120_000);

  afterAll(async () => {
    await ledger?.close();
    await appClient?.end();
    await asAdmin(async (client) => {
      await client.query(`drop schema if exists ${schema} cascade`);
      for (const role of [app, owner]) {
        const exists = await client.query('select 1 from pg_roles where rolname = $1', [role]);
        if (exists.rowCount === 0) continue;
        await client.query(`reassign owned by ${role} to current_user`);
        await client.query(`drop owned by ${role}`);
        await client.query(`drop role ${role}`);
      }
    });
  }, 60_000);

  it('appends, reads, folds and keeps the projections as the app role', async () => {
    const job = 'job-app';
    const eventId = randomUUID();
    const first = await ledger.append(job, [{ ...started, eventId }, completed('a')], {
      expectedVersion: 'no_stream',
    });
    expect(first.nextExpectedVersion).toBe(2);
    // A retry is answered from the log; other content under the same id is refused.
    expect(
      (await ledger.append(job, [{ ...started, eventId }], { expectedVersion: 'no_stream' }))
        .events[0]!.position,
    ).toBe(first.events[0]!.position);
    await expect(
      ledger.append(job, [{ ...started, eventId, data: { ...started.data, name: 'other' } }]),
    ).rejects.toMatchObject({ code: 'idempotency_conflict', eventIds: [eventId] });
    await ledger.append(job, [completed('b')], { expectedVersion: 2 });

    expect((await ledger.readStream(job)).map((event) => event.version)).toEqual([1, 2, 3]);
    // Gap-safe: another suite's open transaction on the shared server may hold it back a while.
    let page = await ledger.readAll({ limit: 10 });
    for (const deadline = Date.now() + 30_000; page.events.length < 3 && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      page = await ledger.readAll({ limit: 10 });
    }
    expect(page.events).toHaveLength(3);
    expect(await ledger.streamVersion(job)).toBe(3);

    expect(await ledger.catchUpProjections()).not.toHaveLength(0);
    const status = await ledger.status(job);
    expect(status?.progress).toMatchObject({ status: 'running', total: 2 });
    expect(status?.progress.counts.completed).toBe(2);
    expect((await ledger.projectionStatus()).length).toBeGreaterThan(0);
  });

  it('refuses every way round headway_append, each with insufficient_privilege', async () => {
    await ledger.append('job-guarded', [started]);
    const appendSignature =
      'headway_append(text[], bigint[], integer[], uuid[], text[], integer[], jsonb, jsonb, timestamptz[])';
    const attempts = [
      'alter table events disable trigger events_no_update_or_delete',
      'alter table events disable trigger all',
      'alter table streams disable trigger streams_head_matches_log',
      "update events set type = 'x.changed'",
      'delete from events',
      'truncate events',
      'update streams set version = 3',
      'delete from streams',
      'truncate streams',
      `insert into events (stream_id, version, event_id, type, schema_version, data, occurred_at)
         values ('job-guarded', 2, gen_random_uuid(), 'x.forged', 1, '{}', now())`,
      "insert into streams (stream_id, version) values ('job-forged', 0)",
      'set session_replication_role = replica',
      'drop function headway_reject_change() cascade',
      'drop trigger events_no_update_or_delete on events',
      'drop trigger streams_no_delete on streams',
      `alter function ${appendSignature} security invoker`,
      `alter function ${appendSignature} owner to ${app}`,
      `create or replace function ${appendSignature}
         returns table (out_stream_id text, out_event_id uuid, out_position bigint,
                        out_version bigint, out_transaction_id xid8, out_recorded_at timestamptz)
         language sql as 'select null::text, null::uuid, null::bigint, null::bigint, null::xid8, null::timestamptz'`,
      'create table events_copy (id int)',
      `set role ${owner}`,
    ];
    const refused: Record<string, string | undefined> = {};
    for (const statement of attempts) {
      const outcome = await appClient.query(statement).then(
        () => 'succeeded',
        (error: unknown) => (error as { code?: string }).code,
      );
      refused[statement.split('\n')[0]!] = outcome;
    }
    expect(refused).toEqual(
      Object.fromEntries(attempts.map((statement) => [statement.split('\n')[0]!, '42501'])),
    );
    const stream = await ledger.readStream('job-guarded');
    expect(stream.map((event) => event.type)).toEqual(['job.started']);
    expect(await ledger.streamVersion('job-guarded')).toBe(1);
    expect(await ledger.streamVersion('job-forged')).toBe(0);
  });

  it('grants nothing beyond what the app needs', async () => {
    const { rows } = await appClient.query<{ table: string; privileges: string }>(`
      select c.relname as table,
             concat_ws(',',
               case when has_table_privilege(c.oid, 'INSERT') then 'insert' end,
               case when has_table_privilege(c.oid, 'UPDATE') then 'update' end,
               case when has_table_privilege(c.oid, 'DELETE') then 'delete' end,
               case when has_table_privilege(c.oid, 'TRUNCATE') then 'truncate' end,
               case when has_table_privilege(c.oid, 'SELECT') then 'select' end) as privileges
        from pg_class c
       where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p')
         and not c.relispartition
       order by 1`);
    expect(Object.fromEntries(rows.map((row) => [row.table, row.privileges]))).toEqual({
      archived_jobs: 'select',
      archives: 'select',
      events: 'select',
      kysely_migration: 'select',
      kysely_migration_lock: 'select',
      projection_checkpoints: 'insert,update,delete,select',
      projection_states: 'insert,update,delete,select',
      streams: 'select',
      webhook_deliveries: 'insert,update,delete,select',
      webhooks: 'insert,update,delete,select',
    });
    const schemaCreate = await appClient.query<{ create: boolean }>(
      `select has_schema_privilege(current_schema(), 'CREATE') as create`,
    );
    expect(schemaCreate.rows[0]!.create).toBe(false);
  });

  it('lets the owner migrate, and refuses an app role that could act as the owner', async () => {
    // Running migrate again as the owner is a no-op that grants again.
    const again = await headway(ownerUrl, 'migrate');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(app);
    // The roles command refuses to make the owner its own app role.
    const same = await runHeadway([
      '--database-url',
      postgresUrl,
      '--schema',
      schema,
      'roles',
      '--owner',
      owner,
      '--app',
      owner,
    ]);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain('expected a role other than the owner');
  });
});
