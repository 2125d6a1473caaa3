import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/client/index.ts';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { storesUnderTest } from './stores.ts';

/** Faults the proxy injected, by kind. */
interface Faults {
  refused503: number;
  answerLost: number;
  streamCut: number;
}

/**
 * A proxy in front of the server that fails on purpose: some posts get a 503 without
 * reaching the server, some reach it and lose their answer (the socket is destroyed),
 * and event streams are cut after a few chunks.
 */
function flakyProxy(target: string, random: () => number): { server: Server; faults: Faults } {
  const faults: Faults = { refused503: 0, answerLost: 0, streamCut: 0 };
  const server = createHttpServer((incoming, outgoing) => {
    const roll = random();
    if (incoming.method === 'POST' && roll < 0.2) {
      faults.refused503 += 1;
      incoming.resume();
      outgoing.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' });
      outgoing.end(JSON.stringify({ error: { code: 'unavailable', message: 'injected' } }));
      return;
    }
    const forwarded = httpRequest(
      `${target}${incoming.url}`,
      { method: incoming.method, headers: incoming.headers },
      (answer) => {
        if (incoming.method === 'POST' && roll < 0.35) {
          // The server stored the batch; its answer never arrives.
          faults.answerLost += 1;
          answer.resume();
          answer.on('end', () => outgoing.socket?.destroy());
          return;
        }
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        if (incoming.url?.includes('/stream')) {
          let chunks = 0;
          const cutAfter = 2 + Math.floor(random() * 4);
          answer.on('data', (chunk: Buffer) => {
            outgoing.write(chunk);
            chunks += 1;
            if (chunks === cutAfter) {
              faults.streamCut += 1;
              answer.destroy();
              outgoing.socket?.destroy();
            }
          });
          answer.on('end', () => outgoing.end());
          return;
        }
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.socket?.destroy());
    incoming.pipe(forwarded);
  });
  return { server, faults };
}

/** A seeded generator, so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`client SDK over a flaky network: ${store.name}`, () => {
    let ledger: Ledger;
    let server: FastifyInstance;
    let proxy: Server;
    let faults: Faults;
    let proxyUrl: string;

    beforeAll(async () => {
      ledger = await store.open();
      server = await createServer({ ledger });
      await server.listen({ host: '127.0.0.1', port: 0 });
      const target = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
      ({ server: proxy, faults } = flakyProxy(target, seeded(20261123)));
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      await server.close();
      await ledger.close();
      await store.cleanup();
    });

    it('lands every recorded event exactly once, in order per job, and a watcher sees them all', async () => {
      const errors: string[] = [];
      const client = createClient({
        url: proxyUrl,
        flushEvents: 7,
        flushIntervalMs: 10,
        batchEvents: 5,
        onError: (error, context) => {
          if (!context.retrying) errors.push(error.message);
        },
      });
      const jobIds = ['sdk-a', 'sdk-b', 'sdk-c'];
      const items = 60;
      const jobs = jobIds.map((jobId) => client.job(jobId));
      for (const job of jobs) {
        await job.start({ name: job.jobId, kind: 'sdk', project: 'sdk', total: items });
      }

      // A watcher through the same proxy, whose stream is cut again and again.
      const watched: { version: number; eventId: string }[] = [];
      const watching = new AbortController();
      const watcher = (async () => {
        for await (const message of client.watch('sdk-a', {
          after: '0:0',
          signal: watching.signal,
        })) {
          if (message.event !== 'event') continue;
          const event = message.data as { version: number; eventId: string };
          watched.push(event);
          if (watched.length === items + 2) watching.abort();
        }
      })();

      await Promise.all(
        jobs.map(async (job) => {
          for (let index = 0; index < items; index += 1) {
            await job.itemCompleted(`item-${index}`, { durationMs: index });
          }
          await job.complete();
        }),
      );
      await client.close();
      await watcher;

      expect(errors).toEqual([]);
      expect(faults.refused503).toBeGreaterThan(0);
      expect(faults.answerLost).toBeGreaterThan(0);
      expect(faults.streamCut).toBeGreaterThan(0);
      for (const jobId of jobIds) {
        const stream = await ledger.readStream(jobId);
        expect(stream.map((event) => event.type)).toEqual([
          'job.started',
          ...Array(items).fill('item.completed'),
          'job.completed',
        ]);
        expect(
          stream
            .filter((event) => event.type === 'item.completed')
            .map((event) => (event.data as { itemId: string }).itemId),
        ).toEqual(Array.from({ length: items }, (_, index) => `item-${index}`));
        expect(new Set(stream.map((event) => event.eventId)).size).toBe(stream.length);
      }
      const stored = await ledger.readStream('sdk-a');
      expect(watched.map((event) => event.version)).toEqual(stored.map((event) => event.version));
      expect(watched.map((event) => event.eventId)).toEqual(stored.map((event) => event.eventId));
    });

    it('answers whether an item is processed in one call, and reads the item', async () => {
      const client = createClient({ url: proxyUrl });
      const job = client.job('sdk-items');
      await job.start({ name: 'items', kind: 'sdk', project: 'sdk' });
      await job.itemCompleted('done-1');
      await job.itemSkipped('skip-1');
      await job.itemFailed('fail-1', new Error('connect ETIMEDOUT 10.0.0.7:443'));
      await client.flush();
      expect(await client.isProcessed('sdk-items', 'done-1')).toBe(true);
      expect(await client.isProcessed('sdk-items', 'skip-1')).toBe(true);
      expect(await client.isProcessed('sdk-items', 'fail-1')).toBe(false);
      expect(await client.isProcessed('sdk-items', 'never-seen')).toBe(false);
      expect(await client.item('sdk-items', 'fail-1')).toMatchObject({
        itemId: 'fail-1',
        status: 'failed',
        attempts: 0,
        lastError: { category: 'timeout', retryable: true },
      });
      expect(await client.item('no-such-job', 'x')).toBeNull();
      await client.close();
    });

    it('refuses bad events at the call, and reports a job that already exists', async () => {
      const client = createClient({ url: proxyUrl });
      const job = client.job('sdk-a');
      await expect(job.itemCompleted('', {})).rejects.toMatchObject({ code: 'invalid_event' });
      await expect(job.start({ name: 'again', kind: 'sdk', project: 'sdk' })).rejects.toMatchObject(
        { status: 409 },
      );
      expect(await client.status('no-such-job')).toBeNull();
      await client.close();
      await expect(job.itemCompleted('late')).rejects.toThrow(/closed/);
    });
  });
}
