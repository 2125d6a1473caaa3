import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Ledger } from '../../src/ledger.ts';
import { openLedger } from '../../src/open-ledger.ts';
import type { WebhookPayload } from '../../src/webhooks/webhook-deliveries.ts';
import { verifyWebhookSignature } from '../../src/webhooks/webhook-signature.ts';
import { postgresAvailable, postgresUrl } from '../stores.ts';
import { freePorts, HeadwayServer } from './processes.ts';

// Two `headway serve` processes on one database judge conditions and deliver webhooks: each
// condition is recorded once in the log, each notification reaches a real receiver (which
// refuses its first two calls) once by delivery id, signed; and deliveries in flight when the
// servers are killed are delivered after they restart.

/** A receiver on loopback: refuses the first `refuse` calls of each delivery id; may hold answers. */
class Receiver {
  readonly calls: { id: string; body: string; signature: string; payload: WebhookPayload }[] = [];
  /** Delivery ids answered 200, with how many times. */
  readonly taken = new Map<string, number>();
  /** While set, requests wait this long before their answer. */
  holdMs = 0;
  private readonly seen = new Map<string, number>();
  private readonly server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(request.headers['headway-delivery']);
      this.calls.push({
        id,
        body,
        signature: String(request.headers['headway-signature']),
        payload: JSON.parse(body) as WebhookPayload,
      });
      const count = (this.seen.get(id) ?? 0) + 1;
      this.seen.set(id, count);
      const answer = () => {
        if (count <= this.refuse) {
          response.statusCode = 503;
          response.end('not yet');
          return;
        }
        this.taken.set(id, (this.taken.get(id) ?? 0) + 1);
        response.end('ok');
      };
      if (this.holdMs > 0) setTimeout(answer, this.holdMs);
      else answer();
    });
  });

  constructor(private readonly refuse: number) {}

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/hook`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The payloads taken (answered 200) of one job, by condition, each delivery once. */
  takenOf(jobId: string): string[] {
    const ids = new Set<string>();
    const conditions: string[] = [];
    for (const call of this.calls) {
      if (call.payload.job.id !== jobId || !this.taken.has(call.id) || ids.has(call.id)) continue;
      ids.add(call.id);
      conditions.push(call.payload.condition);
    }
    return conditions;
  }
}

/** Waits until `done` holds, checking every 100 ms, at most `boundMs`. */
async function until(done: () => boolean | Promise<boolean>, boundMs: number, what: string) {
  const deadline = Date.now() + boundMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within ${boundMs} ms: ${what}`);
    await delay(100);
  }
}

describe.skipIf(!postgresAvailable)('conditions and webhooks with two servers', () => {
  const schema = `hw_alerts_${randomBytes(6).toString('hex')}`;
  let ledger: Ledger;
  let receiver: Receiver;
  let servers: HeadwayServer[] = [];
  let webhookSecret = '';

  beforeAll(async () => {
    ledger = await openLedger({ databaseUrl: postgresUrl, schema });
    receiver = new Receiver(2);
    const url = await receiver.start();
    const ports = await freePorts(2);
    servers = ports.map(
      (port, index) =>
        new HeadwayServer(`server-${index + 1}`, port, postgresUrl, {
          globalArgs: ['--schema', schema],
          serveArgs: ['--conditions-interval', '200', '--webhook-allow-hosts', '127.0.0.1'],
        }),
    );
    await Promise.all(servers.map((server) => server.start()));
    const created = await fetch(`${servers[0]!.url}/v1/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        url,
        conditions: ['stalled', 'recovered', 'at_risk', 'late', 'finished'],
      }),
    });
    expect(created.status).toBe(201);
    webhookSecret = ((await created.json()) as { secret: string }).secret;
  }, 120_000);

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await receiver?.stop();
    await ledger?.close();
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  });

  test('records stalled, recovered, at risk and late once each, and delivers each once by id after retries', async () => {
    const stalling: string = randomUUID();
    await ledger.append(stalling, [
      {
        type: 'job.started',
        data: { name: 'crawl', kind: 'crawl', project: 'alerts', stallAfterMs: 1_500 },
      },
      { type: 'item.completed', data: { itemId: 'a' } },
    ]);
    // Ten items a second so far, with a thousand to go: far past a deadline 4 s away.
    const hurried: string = randomUUID();
    const started = Date.now();
    await ledger.append(hurried, [
      {
        type: 'job.started',
        occurredAt: new Date(started - 2_000),
        data: {
          name: 'index',
          kind: 'index',
          project: 'alerts',
          total: 1_000,
          stallAfterMs: 3_600_000,
          deadline: new Date(started + 4_000).toISOString(),
        },
      },
      ...Array.from({ length: 20 }, (_, index) => ({
        type: 'item.completed' as const,
        occurredAt: new Date(started - 2_000 + index * 100),
        data: { itemId: `i${index}`, durationMs: 100 },
      })),
    ]);

    await until(() => receiver.takenOf(stalling).includes('stalled'), 30_000, 'stalled delivered');
    await ledger.append(stalling, [{ type: 'item.completed', data: { itemId: 'b' } }]);
    await until(
      () => receiver.takenOf(stalling).includes('recovered'),
      30_000,
      'recovered delivered',
    );
    await until(() => receiver.takenOf(hurried).includes('late'), 30_000, 'late delivered');

    expect(receiver.takenOf(stalling).slice(0, 2)).toEqual(['stalled', 'recovered']);
    expect(receiver.takenOf(hurried).slice(0, 2)).toEqual(['at_risk', 'late']);
    // Each id taken: refused twice, then taken once; never again. (The stalling job stalls
    // again after its recovery: that delivery may be under way still.)
    const ids = new Set(
      receiver.calls
        .filter((call) => [stalling, hurried].includes(call.payload.job.id))
        .map((call) => call.id)
        .filter((id) => receiver.taken.has(id)),
    );
    expect(ids.size).toBeGreaterThanOrEqual(4);
    for (const id of ids) {
      expect(receiver.calls.filter((call) => call.id === id)).toHaveLength(3);
      expect(receiver.taken.get(id)).toBe(1);
    }
    const nowSeconds = Math.floor(Date.now() / 1000);
    for (const call of receiver.calls) {
      expect(verifyWebhookSignature(webhookSecret, call.body, call.signature, { nowSeconds })).toBe(
        true,
      );
    }

    // In the log: each fact once, though two servers judged.
    const records = async (jobId: string) =>
      (await ledger.readStream(jobId))
        .filter((event) => event.type.startsWith('condition.'))
        .map((event) => `${event.type} ${(event.data as { condition: string }).condition}`);
    expect((await records(stalling)).slice(0, 2)).toEqual([
      'condition.raised stalled',
      'condition.cleared stalled',
    ]);
    const hurriedRecords = await records(hurried);
    expect(hurriedRecords.filter((line) => line === 'condition.raised at_risk')).toHaveLength(1);
    expect(hurriedRecords.filter((line) => line === 'condition.raised late')).toHaveLength(1);
  }, 120_000);

  test('delivers after a restart what was pending when both servers were killed mid-delivery', async () => {
    receiver.holdMs = 1_500;
    const jobIds: string[] = Array.from({ length: 4 }, () => randomUUID());
    for (const jobId of jobIds) {
      await ledger.append(jobId, [
        { type: 'job.started', data: { name: 'pack', kind: 'pack', project: 'alerts' } },
        { type: 'job.completed', data: {} },
      ]);
    }
    const finishedCalls = () =>
      receiver.calls.filter((call) => jobIds.includes(call.payload.job.id));
    // A request is in flight, held by the receiver: kill both servers now.
    await until(() => finishedCalls().length > 0, 30_000, 'a finished delivery attempted');
    await Promise.all(servers.map((server) => server.kill()));
    // Killed mid-delivery: a request was still held, unanswered, when both servers died.
    // (All four may have been sent by then: the deliverer sends them side by side.)
    const attempted = new Set(finishedCalls().map((call) => call.id));
    expect([...attempted].some((id) => !receiver.taken.has(id))).toBe(true);
    receiver.holdMs = 0;

    await Promise.all(servers.map((server) => server.start()));
    await until(
      () => jobIds.every((jobId) => receiver.takenOf(jobId).includes('finished')),
      60_000,
      'every finished delivered after the restart',
    );
    for (const jobId of jobIds) {
      const ids = new Set(
        finishedCalls()
          .filter((c) => c.payload.job.id === jobId)
          .map((c) => c.id),
      );
      // One delivery per job; taken at least once, twice at most where a kill cut it short.
      expect(ids.size).toBe(1);
      const [id] = ids;
      expect(receiver.taken.get(id!)).toBeGreaterThanOrEqual(1);
      expect(receiver.taken.get(id!)).toBeLessThanOrEqual(2);
    }
  }, 180_000);
});
