import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../../src/ledger.ts';
import { createServer } from '../../src/server/server.ts';
import { storesUnderTest } from '../stores.ts';

const store = storesUnderTest()[0]!;

describe('the cap on event streams', () => {
  let ledger: Ledger;
  let server: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    ledger = await store.open();
    server = await createServer({ ledger, maxStreams: 3 });
    await server.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    await ledger.append('capped', [
      { type: 'job.started', data: { name: 'c', kind: 'k', project: 'p' } },
    ]);
  });
  afterAll(async () => {
    await server.close();
    await ledger.close();
  });

  /** Opens an SSE stream and waits for its first bytes. */
  async function open(controller: AbortController): Promise<Response> {
    const response = await fetch(`${base}/v1/jobs/capped/stream`, { signal: controller.signal });
    if (response.status === 200) await response.body!.getReader().read();
    return response;
  }

  it('answers 503 with Retry-After past the cap, for SSE and WebSocket alike, and frees a slot on close', async () => {
    const controllers = [0, 1, 2].map(() => new AbortController());
    const opened = await Promise.all(controllers.map(open));
    expect(opened.map((response) => response.status)).toEqual([200, 200, 200]);
    const health = (await (await fetch(`${base}/health`)).json()) as { streams: unknown };
    expect(health.streams).toEqual({ open: 3, max: 3, sharedReaders: 1 });

    const refused = await open(new AbortController());
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ error: { code: 'too_many_streams' } });

    const socket = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`);
    await new Promise((resolve) => socket.once('open', resolve));
    type Answer = { type: string; error?: { code: string } };
    const answer = new Promise<Answer>((resolve) =>
      socket.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as Answer)),
    );
    socket.send(JSON.stringify({ type: 'subscribe', id: 's', jobId: 'capped' }));
    expect(await answer).toMatchObject({ type: 'error', error: { code: 'too_many_streams' } });
    socket.close();

    controllers[0]!.abort();
    const deadline = Date.now() + 10_000;
    let again = await open(new AbortController());
    while (again.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      again = await open(new AbortController());
    }
    expect(again.status).toBe(200);
    for (const controller of controllers) controller.abort();
  });
});
