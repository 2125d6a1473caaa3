import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Ledger } from '../src/ledger.ts';
import { parseTokens } from '../src/server/auth.ts';
import { createServer } from '../src/server/server.ts';
import { storesUnderTest } from './stores.ts';

const token = 'websocket-token-0123456789';

interface Message {
  type: string;
  id?: string;
  cursor?: string;
  data?: unknown;
  event?: { version: number; type: string; streamId: string };
  error?: { code: string; message: string };
}

/** A client that queues what it receives, for tests to take in order. */
class Peer {
  readonly socket: WebSocket;
  private readonly received: Message[] = [];
  private waiting: (() => void) | null = null;
  readonly closed: Promise<number>;

  constructor(url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, ...options });
    this.socket.on('message', (data: Buffer) => {
      this.received.push(JSON.parse(data.toString()) as Message);
      this.waiting?.();
    });
    this.closed = new Promise((resolve) => this.socket.on('close', (code) => resolve(code)));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message));
  }

  /** The next message that matches, skipping none: fails on anything else first. */
  async next(timeoutMs = 10_000): Promise<Message> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length === 0) {
      if (Date.now() > deadline) throw new Error('no message in time');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.received.shift()!;
  }

  /** What arrived and was not taken yet. */
  pending(): Message[] {
    return [...this.received];
  }
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`WebSocket /v1/ws: ${store.name}`, () => {
    let ledger: Ledger;
    let server: FastifyInstance;
    let url: string;
    let base: string;

    beforeAll(async () => {
      ledger = await store.open();
      server = await createServer({
        ledger,
        tokens: parseTokens(JSON.stringify({ [token]: ['admin'] })),
        heartbeatMs: 100,
      });
      await server.listen({ host: '127.0.0.1', port: 0 });
      const { port } = server.server.address() as AddressInfo;
      base = `http://127.0.0.1:${port}`;
      url = `ws://127.0.0.1:${port}/v1/ws`;
      const job = ledger.job('ws-job');
      await job.start({ name: 'ws', kind: 'k', project: 'ws' });
      await job.itemCompleted('a');
    });
    afterAll(async () => {
      await server.close();
      await ledger.close();
      await store.cleanup();
    });

    it('subscribes by job and by project, answers pings, and stops on unsubscribe', async () => {
      const peer = new Peer(url);
      await peer.opened();
      peer.send({ type: 'subscribe', id: 'job', jobId: 'ws-job', after: '0:0' });
      expect(await peer.next()).toMatchObject({ type: 'subscribed', id: 'job' });
      expect(await peer.next()).toMatchObject({
        type: 'snapshot',
        id: 'job',
        data: { jobId: 'ws-job' },
      });
      for (const version of [1, 2]) {
        expect(await peer.next()).toMatchObject({ type: 'event', id: 'job', event: { version } });
      }
      peer.send({ type: 'subscribe', id: 'project', project: 'ws' });
      expect(await peer.next()).toMatchObject({ type: 'subscribed', id: 'project' });
      expect(await peer.next()).toMatchObject({ type: 'snapshot', id: 'project' });

      await ledger.job('ws-job').itemCompleted('b');
      const live = [await peer.next(), await peer.next()];
      expect(live.map((message) => message.id).sort()).toEqual(['job', 'project']);
      expect(live.every((message) => message.event?.version === 3)).toBe(true);
      expect(live[0]!.cursor).toMatch(/^\d+:\d+$/);

      peer.send({ type: 'ping' });
      expect(await peer.next()).toEqual({ type: 'pong' });
      peer.send({ type: 'unsubscribe', id: 'job' });
      expect(await peer.next()).toEqual({ type: 'unsubscribed', id: 'job' });
      await ledger.job('ws-job').itemCompleted('c');
      expect(await peer.next()).toMatchObject({ type: 'event', id: 'project' });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(peer.pending()).toEqual([]);
      peer.socket.close();
      await peer.closed;
    });

    it('answers bad messages and unknown jobs with an error, and keeps the connection', async () => {
      const peer = new Peer(url);
      await peer.opened();
      peer.socket.send('not json');
      expect(await peer.next()).toMatchObject({
        type: 'error',
        error: { code: 'invalid_input', message: expect.stringMatching(/expected a JSON/) },
      });
      peer.send({ type: 'subscribe', id: 'x', jobId: 'ws-job', after: 'soon' });
      expect(await peer.next()).toMatchObject({
        type: 'error',
        error: { message: expect.stringMatching(/after: expected a cursor/) },
      });
      peer.send({ type: 'subscribe', id: 'y', jobId: 'ws-job', project: 'ws' });
      expect(await peer.next()).toMatchObject({ type: 'error', id: 'y' });
      peer.send({ type: 'subscribe', id: 'z', jobId: 'no-such-job' });
      expect(await peer.next()).toMatchObject({
        type: 'error',
        id: 'z',
        error: { code: 'not_found' },
      });
      peer.send({ type: 'ping' });
      expect(await peer.next()).toEqual({ type: 'pong' });
      peer.socket.close();
      await peer.closed;
    });

    it('refuses an upgrade without a token', async () => {
      const status = await new Promise<number | undefined>((resolve) => {
        const socket = new WebSocket(url);
        socket.on('unexpected-response', (_request, response) => resolve(response.statusCode));
        socket.on('open', () => resolve(undefined));
      });
      expect(status).toBe(401);
    });

    it('cuts off a peer that stops answering pings, and ends its subscriptions', async () => {
      const peer = new Peer(url, { autoPong: false });
      await peer.opened();
      peer.send({ type: 'subscribe', id: 'dead', jobId: 'ws-job' });
      expect(await peer.next()).toMatchObject({ type: 'subscribed' });
      const started = Date.now();
      const code = await peer.closed;
      expect(code).toBe(1006);
      expect(Date.now() - started).toBeLessThan(5_000);
      const metrics = await (
        await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      expect(metrics).toMatch(/^headway_open_streams 0$/m);
    });
  });
}
