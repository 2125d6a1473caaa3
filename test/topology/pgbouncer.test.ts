import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { firstValueFrom } from 'rxjs';
import { filter, take, timeout, toArray } from 'rxjs/operators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import { ConcurrencyError } from '../../src/errors.ts';
import type { Ledger } from '../../src/ledger.ts';
import { openLedger } from '../../src/open-ledger.ts';
import type { OpenLedgerOptions } from '../../src/open-ledger.ts';
import { cliEnv, headwayBin, runHeadway } from '../cli-runner.ts';
import { postgresAvailable, postgresUrl } from '../stores.ts';
import { findPgbouncer, startPgbouncer } from './pgbouncer-harness.ts';
import type { Pooler } from './pgbouncer-harness.ts';

// Headway through PgBouncer in transaction pooling mode, with a stock configuration: what
// needs a session goes over the direct URL (listenDatabaseUrl), or, without one, polls.

const executable = findPgbouncer();
if (executable === null) {
  if (process.env.CI === 'true') {
    throw new Error('CI=true requires pgbouncer on PATH (apt-get install -y pgbouncer)');
  }
  console.warn(
    '\n*** SKIPPING the PgBouncer topology tests: no pgbouncer on PATH (apt-get install -y pgbouncer). Under CI=true this fails instead.\n',
  );
}

const poolSize = 4;
const databaseName = new URL(postgresUrl).pathname.slice(1);

const started = (name = 'crawl'): EventInput => ({
  type: 'job.started',
  data: { name, kind: 'crawl', project: 'pooled', total: 100 },
});
const completed = (itemId: string): EventInput => ({
  type: 'item.completed',
  data: { itemId, durationMs: 5 },
});

/** One statement on our own database, directly (not through the pooler). */
async function direct<R extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** Waits for `check` to hold (it throws until then), within `ms`. */
async function eventually<T>(check: () => Promise<T>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Waits for the persisted `jobs` projection to be active with nothing left to fold. */
async function caughtUp(ledger: Ledger): Promise<void> {
  await eventually(async () => {
    const statuses = await ledger.projectionStatus();
    const jobs = statuses.find((status) => status.name === 'jobs');
    expect(jobs?.generation?.status).toBe('active');
    expect(jobs?.lag.events).toBe(0);
  });
}

/** Appends to a fresh job and resolves with how long the subscription took to see it. */
async function liveDelay(ledger: Ledger, pollIntervalMs?: number): Promise<number> {
  const jobId = `live-${randomUUID()}`;
  const after = await ledger.liveCursor();
  const seen = firstValueFrom(
    ledger.subscribe({ after, ...(pollIntervalMs ? { pollIntervalMs } : {}) }).pipe(
      filter((event) => event.streamId === jobId),
      take(2),
      toArray(),
      timeout(20_000),
    ),
  );
  // Let the follower start reading before the append.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const begun = Date.now();
  await ledger.append(jobId, [started('live'), completed('a')]);
  const events = await seen;
  expect(events.map((event) => event.type)).toEqual(['job.started', 'item.completed']);
  return Date.now() - begun;
}

describe.skipIf(!postgresAvailable || executable === null)(
  'through PgBouncer (pool_mode = transaction)',
  () => {
    let pooler: Pooler | undefined;
    const ledgers: Ledger[] = [];
    const open = async (options: OpenLedgerOptions) => {
      const ledger = await openLedger({ databaseUrl: pooler!.url, ...options });
      ledgers.push(ledger);
      return ledger;
    };
    const close = async (ledger: Ledger) => {
      ledgers.splice(ledgers.indexOf(ledger), 1);
      await ledger.close();
    };

    beforeAll(async () => {
      pooler = await startPgbouncer(executable!, postgresUrl, { poolSize });
    });
    afterAll(async () => {
      // Even when a test failed: the ledgers first, then the pooler this file started.
      for (const ledger of ledgers.splice(0)) await ledger.close().catch(() => undefined);
      await pooler?.stop();
    });

    it('refuses to open through the pooler undeclared, saying how to declare it', async () => {
      const opening = openLedger({ databaseUrl: pooler!.url, schema: 'pgb_undeclared' });
      await expect(opening).rejects.toMatchObject({
        code: 'invalid_input',
        message: expect.stringMatching(/pooler: 'transaction'.*HEADWAY_DATABASE_POOLER/s),
      });
    });

    describe('with a direct listen URL', () => {
      let ledger: Ledger;
      beforeAll(async () => {
        ledger = await open({
          pooler: 'transaction',
          listenDatabaseUrl: postgresUrl,
          schema: 'pgb_direct',
          // More client connections than the pooler has server connections.
          poolSize: 12,
        });
      });
      afterAll(async () => {
        if (ledger) await close(ledger);
      });

      it('appends from 20 concurrent callers over 4 server connections, with versions intact', async () => {
        const callers = Array.from({ length: 20 }, (_, caller) => `job-${caller}`);
        await Promise.all(
          callers.map(async (jobId) => {
            let next = (await ledger.append(jobId, [started(jobId)])).nextExpectedVersion;
            for (let batch = 0; batch < 5; batch += 1) {
              const result = await ledger.append(
                jobId,
                [completed(`${batch}-a`), completed(`${batch}-b`)],
                { expectedVersion: next },
              );
              next = result.nextExpectedVersion;
            }
          }),
        );
        for (const jobId of callers) {
          const events = await ledger.readStream(jobId);
          expect(events.map((event) => event.version)).toEqual(
            Array.from({ length: 11 }, (_, index) => index + 1),
          );
        }
        const servers = await pooler!.serverPids();
        expect(servers.length).toBeGreaterThan(0);
        expect(servers.length).toBeLessThanOrEqual(poolSize);
      });

      it('refuses all but one of 20 racing appends at one expected version', async () => {
        await ledger.append('race', [started('race')]);
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, caller) =>
            ledger.append('race', [completed(`c${caller}`)], { expectedVersion: 1 }),
          ),
        );
        const won = results.filter((result) => result.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const result of results) {
          if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(ConcurrencyError);
        }
        expect(await ledger.streamVersion('race')).toBe(2);
      });

      it('stores a batch sent twice (and raced) once', async () => {
        const batch = [started('retry'), completed('x'), completed('y')].map((event) => ({
          ...event,
          eventId: randomUUID(),
        }));
        const first = await ledger.append('retry', batch, { expectedVersion: 'no_stream' });
        const again = await Promise.all(
          Array.from({ length: 8 }, () => ledger.append('retry', batch)),
        );
        for (const result of again) expect(result).toEqual(first);
        expect(await ledger.readStream('retry')).toHaveLength(3);
        const [counted] = await direct<{ rows: string }>(
          `select count(*) as rows from pgb_direct.events where stream_id = 'retry'`,
        );
        expect(Number(counted?.rows)).toBe(3);
      });

      it('sets its bounds and search path per transaction, and leaks none to other clients', async () => {
        const { rows } = await sql<{ path: string; timeout: string; idle: string }>`
          select current_setting('search_path') as path,
                 current_setting('statement_timeout') as timeout,
                 current_setting('idle_in_transaction_session_timeout') as idle`.execute(ledger.db);
        expect(rows[0]).toEqual({
          path: expect.stringContaining('pgb_direct'),
          timeout: '30s',
          idle: '30s',
        });
        const inTransaction = await ledger.db.transaction().execute(async (trx) => {
          const result = await sql<{ path: string }>`
            select current_setting('search_path') as path`.execute(trx);
          return result.rows[0]!.path;
        });
        expect(inTransaction).toContain('pgb_direct');
        // A plain client of the same pooler, after all of the above, sees the defaults on
        // every server connection it is given.
        const [defaults] = await direct<{ path: string; timeout: string }>(
          `select current_setting('search_path') as path, current_setting('statement_timeout') as timeout`,
        );
        const plain = new pg.Client({ connectionString: pooler!.url });
        await plain.connect();
        try {
          for (let round = 0; round < 3 * poolSize; round += 1) {
            const seen = await plain.query<{ path: string; timeout: string }>(
              `select current_setting('search_path') as path, current_setting('statement_timeout') as timeout`,
            );
            expect(seen.rows[0]).toEqual(defaults);
          }
        } finally {
          await plain.end();
        }
      });

      it('reads, pages the timeline and answers status through the pooler', async () => {
        const all = [];
        for await (const page of ledger.readAllBatches({ limit: 25 })) all.push(...page.events);
        expect(all.length).toBeGreaterThanOrEqual(20 * 11);
        const timeline = await ledger.timeline({ jobId: 'job-3', limit: 5 });
        expect(timeline.events).toHaveLength(5);
        expect(timeline.nextCursor).not.toBeNull();
        const rest = await ledger.timeline({ jobId: 'job-3', cursor: timeline.nextCursor! });
        expect(rest.events).toHaveLength(6);
        const status = await ledger.status('job-3');
        expect(status?.progress.processed).toBe(10);
        expect((await ledger.jobs({ project: 'pooled' })).length).toBeGreaterThanOrEqual(20);
      });

      it('delivers live events, with a LISTEN on a direct connection', async () => {
        // Not timed against the poll: on a shared server another program's open transaction
        // can hold gap-safe reads back past any wake-up. The LISTEN itself is checked below.
        const delay = await liveDelay(ledger);
        console.log(`through the pooler, with LISTEN: delivered after ${delay} ms`);
        // The LISTEN connection lives while someone follows the log.
        const following = ledger.subscribe({ after: await ledger.liveCursor() }).subscribe();
        try {
          const listeners = await eventually(async () => {
            const rows = await direct<{ pid: number; application_name: string }>(
              `select pid, application_name from pg_stat_activity
                where datname = $1 and query ilike 'listen%'`,
              [databaseName],
            );
            expect(rows.map((row) => row.application_name)).toEqual(['headway-listen']);
            return rows;
          });
          const servers = new Set(await pooler!.serverPids());
          expect(servers.has(listeners[0]!.pid)).toBe(false);
        } finally {
          following.unsubscribe();
        }
      });

      it('runs the persisted projection under a session lock on a direct connection', async () => {
        const runners = ledger.runProjections();
        try {
          await caughtUp(ledger);
          const status = await ledger.status('job-7');
          expect(status?.progress.processed).toBe(10);
          const servers = new Set(await pooler!.serverPids());
          const holders = await direct<{ pid: number; application_name: string }>(
            `select a.pid, a.application_name from pg_locks l join pg_stat_activity a using (pid)
              where l.locktype = 'advisory' and l.granted and a.datname = $1`,
            [databaseName],
          );
          expect(holders.map((row) => row.application_name)).toEqual(['headway-runner']);
          expect(servers.has(holders[0]!.pid)).toBe(false);
        } finally {
          await runners.stop();
        }
      });
    });

    describe('without a listen URL', () => {
      let ledger: Ledger;
      beforeAll(async () => {
        ledger = await open({
          pooler: 'transaction',
          schema: 'pgb_polling',
          poolSize: 8,
          applicationName: 'headway-polling',
        });
        await Promise.all(
          Array.from({ length: 20 }, (_, caller) =>
            ledger.append(`job-${caller}`, [started(), completed('a'), completed('b')]),
          ),
        );
      });
      afterAll(async () => {
        if (ledger) await close(ledger);
      });

      it('still delivers live events, by polling, and never LISTENs through the pooler', async () => {
        const following = ledger.subscribe({ after: await ledger.liveCursor() }).subscribe();
        try {
          const delay = await liveDelay(ledger);
          console.log(`through the pooler, polling: delivered after ${delay} ms`);
          // While this one follows, none of its own connections listens (they would be
          // named headway-polling-*), and no server connection of the pooler does.
          const servers = await pooler!.serverPids();
          const listeners = await direct<{ pid: number; application_name: string }>(
            `select pid, application_name from pg_stat_activity
              where datname = $1 and query ilike 'listen%'`,
            [databaseName],
          );
          const ours = listeners.filter(
            (row) =>
              row.application_name.startsWith('headway-polling') || servers.includes(row.pid),
          );
          expect(ours).toEqual([]);
        } finally {
          following.unsubscribe();
        }
      });

      it('runs the projection under a transaction-level lock that the pooler pins, never a session lock', async () => {
        const runners = ledger.runProjections();
        let holderPid: number;
        try {
          await caughtUp(ledger);
          expect((await ledger.status('job-4'))?.progress.processed).toBe(2);
          const servers = new Set(await pooler!.serverPids());
          const holders = await direct<{ pid: number; state: string; xid: string | null }>(
            `select a.pid, a.state, a.backend_xid::text as xid
               from pg_locks l join pg_stat_activity a using (pid)
              where l.locktype = 'advisory' and l.granted and a.datname = $1`,
            [databaseName],
          );
          expect(holders).toHaveLength(1);
          holderPid = holders[0]!.pid;
          // Held through the pooler, inside an open transaction that has no transaction id,
          // so it holds back no gap-safe reader.
          expect(servers.has(holderPid)).toBe(true);
          expect(holders[0]!.state).toMatch(/idle in transaction|active/);
          expect(holders[0]!.xid).toBeNull();

          // A second process through the same pooler cannot take it meanwhile.
          const other = await open({
            pooler: 'transaction',
            schema: 'pgb_polling',
            migrate: false,
          });
          expect(await other.catchUpProjections()).toEqual([]);
          // And events appended now are folded by the holder.
          await other.append('late', [started('late'), completed('z')]);
          await close(other);
          await eventually(async () => {
            expect((await ledger.status('late'))?.progress.processed).toBe(1);
            await caughtUp(ledger);
          });
        } finally {
          await runners.stop();
        }
        // Released with the transaction: no advisory lock stays behind on the server
        // connections the pooler keeps for its other clients.
        const locks = await direct(
          `select l.pid from pg_locks l join pg_stat_activity a using (pid)
            where l.locktype = 'advisory' and a.datname = $1`,
          [databaseName],
        );
        expect(locks).toEqual([]);
        expect((await pooler!.serverPids()).length).toBeGreaterThan(0);
      });
    });

    describe('the CLI', () => {
      beforeAll(async () => {
        const ledger = await open({ pooler: 'transaction', schema: 'pgb_cli', poolSize: 4 });
        await ledger.append('cli-job', [started('cli'), completed('a'), completed('b')]);
        await close(ledger);
      });

      it('reads through the pooler with HEADWAY_DATABASE_POOLER=transaction, and refuses other modes', async () => {
        const env = { HEADWAY_DATABASE_URL: pooler!.url, HEADWAY_SCHEMA: 'pgb_cli' };
        const run = await runHeadway(['status', 'cli-job', '--json'], {
          ...env,
          HEADWAY_DATABASE_POOLER: 'transaction',
        });
        expect(run.stderr).toBe('');
        expect(run.code).toBe(0);
        expect(run.stdout).toContain('cli-job');
        const undeclared = await runHeadway(['status', 'cli-job', '--json'], env);
        expect(undeclared.code).toBe(1);
        expect(undeclared.stderr).toMatch(/HEADWAY_DATABASE_POOLER=transaction/);
        const bogus = await runHeadway(['status', 'cli-job'], {
          ...env,
          HEADWAY_DATABASE_POOLER: 'session',
        });
        expect(bogus.code).toBe(1);
        expect(bogus.stderr).toMatch(/HEADWAY_DATABASE_POOLER: expected 'transaction' or 'none'/);
      });

      it('serves through the pooler with --database-pooler and --listen-database-url', async () => {
        const child = spawn(
          process.execPath,
          [
            headwayBin,
            '--schema',
            'pgb_cli',
            'serve',
            '--port',
            '0',
            '--database-pooler',
            'transaction',
            '--listen-database-url',
            postgresUrl,
          ],
          {
            env: { ...cliEnv(), HEADWAY_DATABASE_URL: pooler!.url },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
        try {
          const serving = /Headway serving PostgreSQL (.*) on (http:\/\/\S+) \(API/;
          const match = await eventually(() => {
            const found = serving.exec(output);
            if (!found) throw new Error(`headway serve has not started: ${output}`);
            return Promise.resolve(found);
          }, 60_000);
          expect(match[1]).toContain('transaction pooler; LISTEN and runner locks over');
          const response = await fetch(`${match[2]}/v1/jobs/cli-job`);
          expect(response.status).toBe(200);
          const body = (await response.json()) as { progress: { processed: number } };
          expect(body.progress.processed).toBe(2);
        } finally {
          child.kill('SIGTERM');
          expect(await exited).toBe(0);
        }
      });
    });
  },
);
