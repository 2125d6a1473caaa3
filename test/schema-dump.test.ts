import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { storesUnderTest } from './stores.ts';

/** Dumps the migrated schema from the catalogue, with the schema name taken out. */
async function dumpSchema(ledger: Ledger): Promise<string> {
  const run = async (query: ReturnType<typeof sql<{ line: string }>>) =>
    (await query.execute(ledger.db)).rows.map((row) => row.line);
  const columns = await run(sql`
    select format('%s.%s %s%s%s%s', table_name, column_name, data_type,
                  case when is_nullable = 'NO' then ' not null' else '' end,
                  case when is_identity = 'YES' then ' identity ' || identity_generation else '' end,
                  coalesce(' default ' || column_default, '')) as line
      from information_schema.columns where table_schema = current_schema()
     order by table_name, ordinal_position`);
  const constraints = await run(sql`
    select format('%s %s: %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) as line
      from pg_constraint where connamespace = current_schema()::regnamespace and contype <> 'n'
     order by conrelid::regclass::text, conname`);
  const indexes = await run(sql`
    select indexdef as line from pg_indexes where schemaname = current_schema() order by indexname`);
  const triggers = await run(sql`
    select pg_get_triggerdef(t.oid) as line from pg_trigger t
      join pg_class c on c.oid = t.tgrelid
     where c.relnamespace = current_schema()::regnamespace and not t.tgisinternal
     order by t.tgname`);
  const functions = await run(sql`
    select pg_get_functiondef(p.oid) as line from pg_proc p
     where p.pronamespace = current_schema()::regnamespace order by p.proname`);
  const schema = (await sql<{ name: string }>`select current_schema() as name`.execute(ledger.db))
    .rows[0]!.name;
  const text = [
    '-- columns',
    ...columns,
    '',
    '-- constraints',
    ...constraints,
    '',
    '-- indexes',
    ...indexes,
    '',
    '-- triggers',
    ...triggers,
    '',
    '-- functions',
    ...functions,
  ].join('\n');
  return `${text.replaceAll(`${schema}.`, '').trimEnd()}\n`;
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`migrated schema: ${store.name}`, () => {
    afterAll(() => store.cleanup());

    it('matches the checked-in dump, so schema drift shows in review', async () => {
      const ledger = await store.open();
      try {
        await expect(await dumpSchema(ledger)).toMatchFileSnapshot('./schema.dump.sql');
      } finally {
        await ledger.close();
      }
    });
  });
}
