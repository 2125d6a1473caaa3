import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobEta } from '../../projections/job-eta.ts';
import { fold } from '../../projections/projection.ts';
import { createScratchDatabase } from '../../bench/scratch-database.ts';
import type { ScratchDatabase } from '../../bench/scratch-database.ts';
import { toJson } from '../../src/json.ts';
import { openLedger } from '../../src/open-ledger.ts';
import { postgresAvailable, postgresUrl } from '../stores.ts';
import { runDrill, ServeProcess, standardPlan } from './drill.ts';
import { TcpProxy } from './tcp-proxy.ts';

/** Polls `probe` until it returns true, failing with `what` after `boundMs`. */
async function until(what: string, boundMs: number, probe: () => Promise<boolean>) {
  const deadline = Date.now() + boundMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await delay(100);
  }
}

describe.skipIf(!postgresAvailable)('database faults under load (PostgreSQL)', () => {
  let database: ScratchDatabase;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    // A database of its own: its backends are the only ones this suite terminates.
    database = await createScratchDatabase(postgresUrl);
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await database?.drop();
  });

  it(
    'five backend terminations, a 10 s cut and a 10 s black hole: the server keeps serving, clients see only 2xx, 409 or 503, and every acknowledged event is stored once',
    async () => {
      const report = await runDrill(database, standardPlan);
      cleanups.push(
        () => report.proxy.close(),
        () => report.server.stop(),
      );
      const { server, proxy: _proxy, jobIds, ...figures } = report;
      console.log(`fault drill: ${JSON.stringify(figures)}`);

      expect(figures.serverAlive, server.output).toBe(true);
      expect(figures.unexpected).toEqual([]);
      // The faults were felt: some appends were refused with 503 while they lasted.
      expect(figures.outcomes['503'] ?? 0).toBeGreaterThan(0);
      expect(figures.backendsTerminated).toBeGreaterThanOrEqual(standardPlan.terminations);
      expect(figures.acknowledged).toBeGreaterThan(0);
      expect(figures.missing).toBe(0);
      expect(figures.duplicates).toBe(0);
      expect(figures.gaps).toBe(0);
      expect(Object.keys(figures.recoveryMs)).toHaveLength(standardPlan.terminations + 2);

      // Healthy again with no restart, and the API's projections equal a fresh fold.
      await until('/health answers 200', 60_000, async () => {
        const response = await fetch(`${server.address}/health`);
        return response.status === 200;
      });
      const ledger = await openLedger({ databaseUrl: database.url, migrate: false });
      try {
        for (const jobId of jobIds) {
          const stream = await ledger.readStream(jobId);
          const all = [...stream];
          while (all.length % 10_000 === 0 && all.length > 0) {
            const more = await ledger.readStream(jobId, { fromVersion: all.length + 1 });
            if (more.length === 0) break;
            all.push(...more);
          }
          const { items: _items, ...expected } = fold(jobEta, all).progress;
          const response = await fetch(`${server.address}/v1/jobs/${jobId}`);
          expect(response.status).toBe(200);
          const view = (await response.json()) as { progress: unknown };
          expect(view.progress).toEqual(JSON.parse(toJson(expected)));
        }
      } finally {
        await ledger.close();
      }
    },
    10 * 60_000,
  );

  it('starts while the database is unreachable: 503 with Retry-After, then serves with no restart', async () => {
    const target = new URL(database.url);
    const proxy = await TcpProxy.start(Number(target.port || 5432), target.hostname);
    cleanups.push(() => proxy.close());
    proxy.setMode('reset');
    const viaProxy = new URL(database.url);
    viaProxy.port = String(proxy.port);
    const server = await ServeProcess.start(viaProxy.toString());
    cleanups.push(() => server.stop());

    const health = await fetch(`${server.address}/health`);
    expect(health.status).toBe(503);
    expect(health.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await health.json()).toMatchObject({ status: 'unavailable', database: 'starting' });
    const refused = await fetch(`${server.address}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobId: 'late', name: 'late', kind: 'k', project: 'p' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ error: { code: 'database_unavailable' } });

    // A slow network is not a fault: answers come late, not as errors.
    proxy.setDelay(200);
    proxy.setMode('pass');
    await until('the server finds its database', 60_000, async () => {
      const response = await fetch(`${server.address}/health`);
      return response.status === 200;
    });
    const started = await fetch(`${server.address}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobId: 'late', name: 'late', kind: 'k', project: 'p' }),
    });
    expect(started.status).toBe(201);
    proxy.setDelay(0);
    expect(server.alive).toBe(true);
  });
});
