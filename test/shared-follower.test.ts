import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { formatLogCursor } from '../src/cursors.ts';
import type { Ledger } from '../src/ledger.ts';
import { SharedFollower } from '../src/live/shared-follower.ts';
import { storesUnderTest } from './stores.ts';

/** Collects what a follow yields until it holds `count` events or `boundMs` passes. */
async function collect(
  follower: SharedFollower,
  options: Parameters<SharedFollower['follow']>[0],
  count: number,
  {
    boundMs = 30_000,
    slowMs = 0,
    until = (_events: RecordedEvent[]): boolean => false,
  }: { boundMs?: number; slowMs?: number; until?: (events: RecordedEvent[]) => boolean } = {},
): Promise<RecordedEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), boundMs);
  const events: RecordedEvent[] = [];
  try {
    for await (const page of follower.follow(options, controller.signal)) {
      events.push(...page.events);
      if (events.length >= count || until(events)) break;
      if (slowMs > 0) await new Promise((resolve) => setTimeout(resolve, slowMs));
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

const completed = (count: number, prefix: string) =>
  Array.from({ length: count }, (_, index) => ({
    type: 'item.completed' as const,
    data: { itemId: `${prefix}-${index}` },
  }));

async function startJob(ledger: Ledger, jobId: string, project: string) {
  await ledger.append(jobId, [{ type: 'job.started', data: { name: jobId, kind: 'k', project } }]);
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`shared follower: ${store.name}`, () => {
    afterAll(async () => {
      await store.cleanup();
    });

    it('gives a subscriber that starts behind every event once, in order, while appends go on', async () => {
      const ledger = await store.open();
      const follower = new SharedFollower(ledger, { batchSize: 50 });
      try {
        await startJob(ledger, 'a', 'p');
        for (let round = 0; round < 4; round++)
          await ledger.append('a', completed(40, `r${round}`));
        // A live subscriber keeps the shared read going while the late one catches up.
        // Live starts at the log's live cursor, the oldest transaction still running anywhere
        // on the server: it may hold back to events just committed, never past a new one.
        const live = collect(follower, {}, 361, {
          until: (events) => events.at(-1)?.version === 361,
        });
        const late = collect(follower, { after: '0:0', streamIds: ['a'] }, 1 + 160 + 200);
        await new Promise((resolve) => setTimeout(resolve, 50));
        for (let round = 0; round < 10; round++)
          await ledger.append('a', completed(20, `l${round}`));
        const [liveEvents, lateEvents] = await Promise.all([live, late]);
        expect(lateEvents.map((event) => event.version)).toEqual(
          Array.from({ length: 361 }, (_, index) => index + 1),
        );
        const liveVersions = liveEvents.map((event) => event.version);
        const first = liveVersions[0]!;
        expect(first).toBeLessThanOrEqual(162);
        expect(liveVersions).toEqual(
          Array.from({ length: 362 - first }, (_, index) => first + index),
        );
      } finally {
        follower.close();
        await ledger.close();
      }
    });

    it('lets a slow consumer fall behind, read on its own, and rejoin without a gap or a repeat', async () => {
      const ledger = await store.open();
      const follower = new SharedFollower(ledger, { batchSize: 25, maxQueuedEvents: 30 });
      try {
        await startJob(ledger, 'slow', 'p');
        const start = formatLogCursor(await follower.cursor());
        const slow = collect(follower, { after: start, streamIds: ['slow'] }, 300, { slowMs: 20 });
        for (let round = 0; round < 30; round++) {
          await ledger.append('slow', completed(10, `s${round}`));
        }
        const events = await slow;
        expect(events.map((event) => event.version)).toEqual(
          Array.from({ length: 300 }, (_, index) => index + 2),
        );
      } finally {
        follower.close();
        await ledger.close();
      }
    });

    it('filters by stream, type and project as readAll does', async () => {
      const ledger = await store.open();
      const follower = new SharedFollower(ledger);
      try {
        await startJob(ledger, 'web-1', 'web');
        const after = formatLogCursor(await follower.cursor());
        const byProject = collect(follower, { after, projects: ['web'] }, 4);
        const byType = collect(follower, { after, types: ['job.started'] }, 2);
        const byStream = collect(follower, { after, streamIds: ['img-1'] }, 3);
        await ledger.append('web-1', completed(2, 'w'));
        await startJob(ledger, 'img-1', 'images');
        await ledger.append('img-1', completed(2, 'i'));
        await startJob(ledger, 'web-2', 'web');
        await ledger.append('web-2', completed(1, 'w2'));
        const streams = (events: RecordedEvent[]) =>
          events.map((event) => `${event.streamId}:${event.version}`);
        expect(streams(await byProject)).toEqual(['web-1:2', 'web-1:3', 'web-2:1', 'web-2:2']);
        expect(streams(await byType)).toEqual(['img-1:1', 'web-2:1']);
        expect(streams(await byStream)).toEqual(['img-1:1', 'img-1:2', 'img-1:3']);
      } finally {
        follower.close();
        await ledger.close();
      }
    });

    it('reads the log once per wake-up, however many subscribers follow', async () => {
      const ledger = await store.open();
      const follower = new SharedFollower(ledger);
      const controller = new AbortController();
      try {
        const jobs = Array.from({ length: 200 }, () => randomUUID());
        const after = formatLogCursor(await follower.cursor());
        const received = jobs.map(() => 0);
        const following = jobs.map(async (jobId, index) => {
          for await (const page of follower.follow(
            { after, streamIds: [jobId] },
            controller.signal,
          )) {
            received[index]! += page.events.length;
          }
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        expect(follower.size).toBe(200);
        const reads = vi.spyOn(ledger, 'readAll');
        for (const jobId of jobs.slice(0, 20)) await startJob(ledger, jobId, 'many');
        const deadline = Date.now() + 30_000;
        while (received.slice(0, 20).some((count) => count < 1) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(received).toEqual(jobs.map((_, index) => (index < 20 ? 1 : 0)));
        // 20 appends, 200 subscribers: one shared read per wake-up, none per subscriber.
        expect(reads.mock.calls.length).toBeLessThanOrEqual(40);
        controller.abort();
        await Promise.all(following);
      } finally {
        controller.abort();
        follower.close();
        await ledger.close();
      }
    });
  });
}
