import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import { openLedger } from '../src/open-ledger.ts';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { jsonOf, runHeadway } from './cli-runner.ts';
import { listenOnLoopback } from './listen.ts';
import { postgresUrl, storesUnderTest } from './stores.ts';

/** A store the CLI can open too: a data directory, or a PostgreSQL schema. */
interface SharedStore {
  name: string;
  available: boolean;
  open(): Promise<Ledger>;
  cliArgs: string[];
  cleanup(): Promise<void>;
}

function sharedStores(): SharedStore[] {
  const postgres = storesUnderTest().find((store) => store.name === 'postgres')!;
  const schema = `hw_test_${randomBytes(6).toString('hex')}`;
  const folder = join(tmpdir(), `headway-job-list-${randomBytes(6).toString('hex')}`);
  return [
    {
      name: 'pglite',
      available: true,
      open: () => openLedger({ dataDir: folder }),
      cliArgs: ['--data-dir', folder],
      cleanup: () => rm(folder, { recursive: true, force: true }),
    },
    {
      name: 'postgres',
      available: postgres.available,
      open: () => postgres.open({ schema }),
      cliArgs: ['--database-url', postgresUrl, '--schema', schema],
      cleanup: () => postgres.cleanup(),
    },
  ];
}

const started = (project: string, extra: Record<string, unknown> = {}): EventInput => ({
  type: 'job.started',
  data: { name: 'listed job', kind: 'crawl', project, ...extra },
});
const planned = (...ids: string[]): EventInput => ({
  type: 'items.planned',
  data: { items: ids.map((id) => ({ id })) },
});
const completed = (itemId: string): EventInput => ({ type: 'item.completed', data: { itemId } });

/** Jobs in every status, some folded into the stored projection and some only in the log. */
async function recordJobs(ledger: Ledger): Promise<void> {
  await ledger.append('running', [started('web'), planned('a', 'b'), completed('a')]);
  await ledger.append('paused', [started('web'), planned('a'), { type: 'job.paused', data: {} }]);
  await ledger.append('done', [started('shop'), planned('a'), completed('a')]);
  await ledger.append('broken', [
    started('shop', { kind: 'index' }),
    { type: 'job.failed', data: { error: { message: 'gave up', category: 'unknown' } } },
  ]);
  await ledger.append('never-started-items', [started('web'), planned('a', 'b', 'c')]);
  // Stored up to here; what follows is the log's tail past the checkpoint.
  await ledger.catchUpProjections();
  await ledger.append('done', [{ type: 'job.completed', data: {} }]);
  await ledger.append('stopped', [
    started('web', { parentJobId: 'running' }),
    { type: 'job.cancelled', data: { reason: 'operator' } },
  ]);
  await ledger.append('resumed', [
    started('shop'),
    { type: 'job.paused', data: {} },
    { type: 'job.resumed', data: {} },
  ]);
}

type Listed = { jobId: string; status: string }[];
/** Job ids and statuses by id: the CLI prints newest started first, the API newest updated. */
const idsAndStatuses = (jobs: Listed) =>
  jobs
    .map(({ jobId, status }) => ({ jobId, status }))
    .sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));

for (const store of sharedStores()) {
  describe.skipIf(!store.available)(
    `headway jobs and GET /v1/jobs list the same jobs: ${store.name}`,
    { timeout: 180_000 },
    () => {
      afterAll(() => store.cleanup());

      it('the same job ids in the same statuses, whole and filtered', async () => {
        const ledger = await store.open();
        const api: Record<string, Listed> = {};
        try {
          await recordJobs(ledger);
          const server = await createServer({ ledger });
          try {
            const base = await listenOnLoopback(server);
            const list = async (query: string) => {
              const response = await fetch(`${base}/v1/jobs${query}`);
              expect(response.status).toBe(200);
              const page = (await response.json()) as {
                jobs: { jobId: string; progress: { status: string } }[];
              };
              return page.jobs.map((job) => ({ jobId: job.jobId, status: job.progress.status }));
            };
            api.all = await list('?limit=50');
            api.shop = await list('?project=shop&limit=50');
            api.ended = await list('?status=failed,cancelled,completed&limit=50');
            api.index = await list('?kind=index&limit=50');
          } finally {
            await server.close();
          }
        } finally {
          await ledger.close();
        }

        expect(Object.fromEntries(api.all.map((job) => [job.jobId, job.status]))).toEqual({
          running: 'running',
          paused: 'paused',
          done: 'completed',
          broken: 'failed',
          'never-started-items': 'running',
          stopped: 'cancelled',
          resumed: 'running',
        });
        const cli = async (...args: string[]) =>
          jsonOf<(Listed[number] & { events: number; startedAt: string })[]>(
            await runHeadway([...store.cliArgs, 'jobs', '--json', ...args]),
          );
        const all = await cli();
        expect(idsAndStatuses(all)).toEqual(idsAndStatuses(api.all));
        const starts = all.map((job) => job.startedAt);
        expect(starts).toEqual([...starts].sort().reverse());
        // `events` is the job's stream version: `done` has four.
        expect(all.find((job) => job.jobId === 'done')!.events).toBe(4);
        expect(idsAndStatuses(await cli('--project', 'shop'))).toEqual(idsAndStatuses(api.shop));
        const ended = await cli('--status', 'failed,cancelled', '--status', 'completed');
        expect(idsAndStatuses(ended)).toEqual(idsAndStatuses(api.ended));
        expect(idsAndStatuses(await cli('--kind', 'index'))).toEqual(idsAndStatuses(api.index));
        const table = await runHeadway([...store.cliArgs, 'jobs', '--limit', '2']);
        expect(table.stdout.split('\n')[0]).toMatch(
          /^JOB\s+NAME\s+KIND\s+PROJECT\s+STATUS\s+EVENTS\s+STARTED\s+CONDITIONS$/,
        );
        expect(table.stdout.trim().split('\n')).toHaveLength(3);
      });
    },
  );
}
