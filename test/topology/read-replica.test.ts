import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { firstValueFrom } from 'rxjs';
import { filter, take, timeout, toArray } from 'rxjs/operators';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../../schema/events.ts';
import { HeadwayClient } from '../../src/client/client.ts';
import type { Ledger } from '../../src/ledger.ts';
import { openLedger } from '../../src/open-ledger.ts';
import { createServer } from '../../src/server/server.ts';
import { runHeadway } from '../cli-runner.ts';
import { postgresAvailable } from '../stores.ts';
import { findServerBinaries, startReplicatedCluster } from './replica-cluster.ts';
import type { ReplicatedCluster } from './replica-cluster.ts';

// A primary and a hot standby of the test's own (initdb, pg_basebackup -R, pg_ctl), and a
// ledger that reads from the standby: reads, views and streams there, appends, resume and
// runners on the primary, read-your-writes by the append's cursor.

const binaries = await findServerBinaries();
if (binaries === null) {
  if (process.env.CI === 'true') {
    throw new Error('CI=true requires the PostgreSQL server binaries (pg_config --bindir)');
  }
  console.warn('\n*** SKIPPING the read replica tests: no PostgreSQL server binaries.\n');
}

const started = (name = 'crawl'): EventInput => ({
  type: 'job.started',
  data: { name, kind: 'crawl', project: 'replicated', total: 100 },
});
const completed = (itemId: string): EventInput => ({
  type: 'item.completed',
  data: { itemId, durationMs: 5 },
});

/** Polls `check` until it holds, for at most `timeoutMs`; the last answer when it never does. */
async function eventually<T>(
  read: () => Promise<T>,
  holds: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (holds(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe.skipIf(!postgresAvailable || binaries === null)('a ledger on a read replica', () => {
  let cluster: ReplicatedCluster;
  let ledger: Ledger;
  let server: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    cluster = await startReplicatedCluster({ settings: { fsync: 'off' } });
    // Migrated on the primary; the tables reach the standby by replication.
    ledger = await openLedger({
      databaseUrl: cluster.primaryUrl,
      readDatabaseUrl: cluster.standbyUrl,
      poolSize: 4,
    });
    server = await createServer({ ledger, readAfterWaitMs: 500 });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    url = `http://127.0.0.1:${address.port}`;
  }, 120_000);

  afterAll(async () => {
    await cluster?.resumeReplay().catch(() => undefined);
    await server?.close();
    await ledger?.close();
    await cluster?.stop();
  }, 60_000);

  it('says where it reads from, and reads its own appends from the replica once replayed', async () => {
    expect(ledger.location.description).toContain('reads from the replica');
    const jobId = randomUUID();
    const { cursor } = await ledger.append(jobId, [started(), completed('a')]);
    expect(cursor).toMatch(/^\d+:\d+$/);
    const { reads, source, waitedMs } = await ledger.readsAfter(cursor);
    expect(source).toBe('replica');
    expect(reads).toBe(ledger);
    expect(waitedMs).toBeGreaterThanOrEqual(0);
    const view = await reads.status(jobId);
    expect(view?.progress.counts.completed).toBe(1);
    expect((await reads.readStream(jobId)).map((event) => event.type)).toEqual([
      'job.started',
      'item.completed',
    ]);
  });

  it('answers from the primary, and says so, while the replica has not replayed the append', async () => {
    const jobId = randomUUID();
    await ledger.append(jobId, [started()]);
    await ledger.readsAfter((await ledger.append(jobId, [completed('x')])).cursor);
    await cluster.pauseReplay();
    try {
      const { cursor } = await ledger.append(jobId, [completed('a'), completed('b')]);
      const chosen = await ledger.readsAfter(cursor, { timeoutMs: 200 });
      expect(chosen.source).toBe('primary');
      expect(chosen.reads).toBe(ledger.primary);
      expect(chosen.waitedMs).toBeGreaterThanOrEqual(200);
      expect((await chosen.reads.status(jobId))?.progress.counts.completed).toBe(3);
      // The replica's own reads do not have it yet: the answer above was the primary's.
      expect((await ledger.status(jobId))?.progress.counts.completed).toBe(1);

      const lagging = await eventually(
        () => ledger.replication(),
        (status) => (status?.lagBytes ?? 0) > 0,
      );
      expect(lagging).toMatchObject({ inRecovery: true, replayPaused: true });
      expect(lagging!.lagBytes).toBeGreaterThan(0);

      // Over HTTP: the same choice, stated in the answer's headers.
      const response = await fetch(`${url}/v1/jobs/${jobId}`, {
        headers: { 'headway-read-after': cursor },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('headway-read-source')).toBe('primary');
      expect(Number(response.headers.get('headway-read-waited-ms'))).toBeGreaterThanOrEqual(500);
      const body = (await response.json()) as { progress: { counts: { completed: number } } };
      expect(body.progress.counts.completed).toBe(3);
      const plain = await fetch(`${url}/v1/jobs/${jobId}`);
      expect(plain.headers.get('headway-read-source')).toBe('replica');
      expect(((await plain.json()) as typeof body).progress.counts.completed).toBe(1);

      const health = (await (await fetch(`${url}/health`)).json()) as {
        status: string;
        replica: { status: string; replayPaused: boolean; lagBytes: number };
      };
      expect(health.status).toBe('ok');
      expect(health.replica).toMatchObject({ status: 'ok', replayPaused: true });
      expect(health.replica.lagBytes).toBeGreaterThan(0);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^headway_replica_lag_bytes [1-9]\d*$/m);
      expect(metrics).toMatch(/^headway_replica_lag_seconds \S+$/m);

      // Resume reads the job on the primary: a replica's fold would be three items behind.
      const resumed = await ledger.resume(jobId, { leaseExpiredBefore: new Date() });
      expect(resumed.version).toBe(5);
    } finally {
      await cluster.resumeReplay();
    }
    const caughtUp = await eventually(
      () => ledger.replication(),
      (status) => status?.lagBytes === 0,
    );
    expect(caughtUp).toMatchObject({ inRecovery: true, replayPaused: false, lagMs: 0 });
    expect((await ledger.status(jobId))?.progress.counts.completed).toBe(3);
  });

  it('a client reads its own writes through a replica-backed server', async () => {
    const client = new HeadwayClient({ url, flushIntervalMs: 0 });
    const jobId = randomUUID();
    await cluster.pauseReplay();
    try {
      const job = client.job(jobId);
      await job.start({ name: 'own writes', kind: 'crawl', project: 'replicated', total: 2 });
      await job.itemCompleted('a');
      await client.flush();
      // Sent with Headway-Read-After: answered by the primary while replay is paused.
      const view = (await client.status(jobId)) as { progress: { counts: { completed: number } } };
      expect(view.progress.counts.completed).toBe(1);
      const other = new HeadwayClient({ url, readYourWrites: false });
      expect(await other.status(jobId)).toBeNull();
      await other.close();
    } finally {
      await cluster.resumeReplay();
      await client.close();
    }
  });

  it('streams every event live from the replica, which polls since a standby cannot LISTEN', async () => {
    const jobId = randomUUID();
    const seen = firstValueFrom(
      ledger.subscribe({ streamIds: [jobId], after: await ledger.liveCursor() }).pipe(
        filter((event) => event.streamId === jobId),
        take(21),
        toArray(),
        timeout(30_000),
      ),
    );
    await ledger.append(jobId, [started()]);
    for (let index = 0; index < 20; index++) await ledger.append(jobId, [completed(`i${index}`)]);
    expect((await seen).map((event) => event.version)).toEqual(
      Array.from({ length: 21 }, (_, index) => index + 1),
    );

    // The same over SSE from the server, which reads the replica.
    const response = await fetch(`${url}/v1/jobs/${jobId}/stream?after=0:0`);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    let text = '';
    const deadline = Date.now() + 20_000;
    while ((text.match(/^event: event$/gm) ?? []).length < 21 && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    expect((text.match(/^event: event$/gm) ?? []).length).toBe(21);
  });

  it('keeps the projection runners on the primary, and shows the replica lag in `headway projections`', async () => {
    const catchUp = await ledger.catchUpProjections();
    expect(catchUp).toContain('jobs');
    const run = await runHeadway(['projections', '--url', url]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^read replica postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres: lag \d[\d,]* ms, \d[\d,]* bytes of WAL behind$/m,
    );
    const direct = await runHeadway(['projections', '--no-catch-up'], {
      HEADWAY_DATABASE_URL: cluster.primaryUrl,
      HEADWAY_READ_DATABASE_URL: cluster.standbyUrl,
    });
    expect(direct.stderr).toBe('');
    expect(direct.stdout).toMatch(/^read replica .*: lag \d[\d,]* ms/m);
  });

  it('keeps taking appends while the replica is down: reads answer 503 with Retry-After, health says why', async () => {
    const jobId = randomUUID();
    await cluster.stopStandby();
    try {
      const appended = await fetch(`${url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jobId, name: 'while down', kind: 'crawl', project: 'replicated' }),
      });
      expect(appended.status).toBe(201);
      const read = await fetch(`${url}/v1/jobs/${jobId}`);
      expect(read.status).toBe(503);
      expect(read.headers.get('retry-after')).toMatch(/^\d+$/);
      const health = await fetch(`${url}/health`);
      const report = (await health.json()) as { status: string; replica: { status: string } };
      expect(report.status).toBe('ok');
      expect(report.replica.status).toBe('unreachable');
    } finally {
      await cluster.startStandby();
    }
    // Back, caught up, and the job written meanwhile reads from it.
    const view = await eventually(
      () => ledger.status(jobId).catch(() => null),
      (found) => found !== null,
    );
    expect(view?.jobId).toBe(jobId);
  });

  it('refuses a read-after header that is not a log cursor, saying what it expected', async () => {
    const response = await fetch(`${url}/v1/jobs`, { headers: { 'headway-read-after': 'soon' } });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('invalid_input');
    expect(body.error.message).toContain('headway-read-after');
    expect(body.error.message).toContain('812:1044');
  });
});
