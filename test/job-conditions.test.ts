import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { noConditions } from '../projections/job-conditions.ts';
import { createServer } from '../src/server/server.ts';
import { runHeadway } from './cli-runner.ts';
import { listenOnLoopback } from './listen.ts';
import { storesUnderTest } from './stores.ts';

// A job's status says when it is stalled, at risk of missing its deadline, or late, judged
// at the read's `now` from what the log holds.

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`job conditions in status: ${store.name}`, () => {
    let ledger: Ledger;

    beforeAll(async () => {
      ledger = await store.open();
    });

    afterAll(async () => {
      await ledger?.close();
      await store.cleanup();
    });

    it('is stalled past its own threshold, and no longer once an event arrives', async () => {
      const jobId = randomUUID();
      await ledger.append(jobId, [
        {
          type: 'job.started',
          data: { name: 'crawl', kind: 'crawl', project: 'alerts', stallAfterMs: 60_000 },
        },
        { type: 'item.completed', data: { itemId: 'a' } },
      ]);
      const [last] = (await ledger.readStream(jobId)).slice(-1);
      const occurredAt = last!.occurredAt.getTime();

      const quiet = await ledger.status(jobId, occurredAt + 60_000);
      expect(quiet?.conditions.stalled).toBeNull();
      const silent = await ledger.status(jobId, occurredAt + 90_000);
      expect(silent?.conditions.stalled).toEqual({
        thresholdMs: 60_000,
        basis: 'job',
        lastEventAt: occurredAt,
        silentMs: 90_000,
      });

      await ledger.append(jobId, [{ type: 'item.completed', data: { itemId: 'b' } }]);
      const [next] = (await ledger.readStream(jobId)).slice(-1);
      const moved = await ledger.status(jobId, next!.occurredAt.getTime() + 1_000);
      expect(moved?.conditions.stalled).toBeNull();
    });

    it('is late once its deadline passes unfinished, and neither once it has finished', async () => {
      const jobId = randomUUID();
      const deadline = Date.now() + 60 * 60_000;
      await ledger.append(jobId, [
        {
          type: 'job.started',
          data: {
            name: 'index',
            kind: 'index',
            project: 'alerts',
            total: 10,
            deadline: new Date(deadline).toISOString(),
          },
        },
      ]);
      expect((await ledger.status(jobId, deadline - 1_000))?.conditions.late).toBeNull();
      expect((await ledger.status(jobId, deadline + 5_000))?.conditions.late).toEqual({
        deadline,
        overdueMs: 5_000,
      });
      await ledger.append(jobId, [{ type: 'job.completed', data: {} }]);
      expect((await ledger.status(jobId, deadline + 5_000))?.conditions).toEqual(noConditions);
    });
  });
}

describe('job conditions over HTTP and in headway status', () => {
  const [store] = storesUnderTest();
  let ledger: Ledger;
  let url: string;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ledger = await store!.open();
    const server = await createServer({ ledger });
    url = await listenOnLoopback(server);
    close = () => server.close();
  });

  afterAll(async () => {
    await close?.();
    await ledger?.close();
    await store!.cleanup();
  });

  it('answers GET /v1/jobs/:id with the conditions, and headway status prints them', async () => {
    const jobId = randomUUID();
    await ledger.append(jobId, [
      {
        type: 'job.started',
        data: {
          name: 'crawl',
          kind: 'crawl',
          project: 'alerts',
          stallAfterMs: 1,
          deadline: '2020-01-01T00:00:00.000Z',
        },
      },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const view = (await (await fetch(`${url}/v1/jobs/${jobId}`)).json()) as {
      conditions: { stalled: { basis: string } | null; late: { deadline: number } | null };
    };
    expect(view.conditions.stalled?.basis).toBe('job');
    expect(view.conditions.late?.deadline).toBe(Date.parse('2020-01-01T00:00:00.000Z'));

    const run = await runHeadway(['status', jobId, '--url', url]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^ {2}STALLED: no event for .+ \(threshold .+, job\)$/m);
    expect(run.stdout).toMatch(/^ {2}LATE: its deadline 2020-01-01T00:00:00\.000Z passed .+ ago$/m);
  });
});
