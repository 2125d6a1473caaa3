import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../../src/ledger.ts';
import type { WebhookPayload } from '../../src/webhooks/webhook-deliveries.ts';
import { verifyWebhookSignature } from '../../src/webhooks/webhook-signature.ts';
import { storesUnderTest } from '../stores.ts';

// Webhooks delivered from the log: enqueued once per subscription and event, sent at least
// once, retried, signed, dead-lettered; to a real receiver on loopback.

const hour = 60 * 60_000;

/** A receiver that answers 500 to the first `failFirst` calls of each delivery id, then 200. */
async function startReceiver(failFirst: number) {
  const calls: { id: string; body: string; signature: string; payload: WebhookPayload }[] = [];
  const seen = new Map<string, number>();
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(request.headers['headway-delivery']);
      calls.push({
        id,
        body,
        signature: String(request.headers['headway-signature']),
        payload: JSON.parse(body) as WebhookPayload,
      });
      const count = (seen.get(id) ?? 0) + 1;
      seen.set(id, count);
      response.statusCode = count <= failFirst ? 500 : 200;
      response.end(count <= failFirst ? 'not yet' : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

for (const store of storesUnderTest()) {
  describe.skipIf(!store.available)(`webhooks: ${store.name}`, () => {
    let ledger: Ledger;
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    const policy = { allowHosts: ['127.0.0.1'] };
    const fast = { ...policy, baseDelayMs: 5, maxDelayMs: 20, timeoutMs: 5_000 };

    beforeAll(async () => {
      ledger = await store.open();
      receiver = await startReceiver(2);
    });

    afterAll(async () => {
      await receiver?.close();
      await ledger?.close();
      await store.cleanup();
    });

    it('delivers a stall and its recovery once each by delivery id, after two failures, signed', async () => {
      const project = `hooks-${randomUUID()}`;
      const { webhook, secret } = await ledger.webhooks.add(
        { url: receiver.url, conditions: ['stalled', 'recovered'], project },
        policy,
      );
      const now = Date.now();
      const jobId = randomUUID();
      await ledger.append(jobId, [
        {
          type: 'job.started',
          occurredAt: new Date(now - hour),
          data: { name: 'crawl', kind: 'crawl', project, stallAfterMs: 60_000 },
        },
      ]);
      const watcher = ledger.conditionWatcher();
      const deliverer = ledger.webhookDeliverer({ ...fast, publicUrl: 'http://127.0.0.1:1' });
      await watcher.sweep(now);
      await ledger.append(jobId, [{ type: 'item.completed', data: { itemId: 'a' } }]);
      await watcher.sweep(Date.now());

      const mine = () => receiver.calls.filter((call) => call.payload.webhookId === webhook.id);
      const taken = async () =>
        (await ledger.webhooks.deliveries(webhook.id)).filter((d) => d.status === 'delivered');
      for (let round = 0; round < 200 && (await taken()).length < 2; round += 1) {
        await deliverer.deliverOnce();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }

      const calls = mine();
      const ids = [...new Set(calls.map((call) => call.id))];
      expect(ids).toHaveLength(2);
      // Each id: twice refused, then taken; never more.
      for (const id of ids) expect(calls.filter((call) => call.id === id)).toHaveLength(3);
      // The recovery waited for the stall to be taken: one job's deliveries go in order.
      const stallTaken = calls.findLastIndex((call) => call.payload.condition === 'stalled');
      const firstRecovery = calls.findIndex((call) => call.payload.condition === 'recovered');
      expect(firstRecovery).toBeGreaterThan(stallTaken);
      // The stall first, then the recovery.
      expect([...new Set(calls.map((call) => call.payload.condition))]).toEqual([
        'stalled',
        'recovered',
      ]);
      const nowSeconds = Math.floor(Date.now() / 1000);
      for (const call of calls) {
        expect(verifyWebhookSignature(secret, call.body, call.signature, { nowSeconds })).toBe(
          true,
        );
        expect(
          verifyWebhookSignature('wrong secret!!!!', call.body, call.signature, { nowSeconds }),
        ).toBe(false);
      }
      const [stalled] = calls;
      expect(stalled!.payload.job).toMatchObject({
        id: jobId,
        name: 'crawl',
        project,
        status: 'running',
      });
      expect(stalled!.payload.url).toBe(`http://127.0.0.1:1/jobs/${jobId}`);
      expect(stalled!.payload.summary).toContain('condition.raised stalled');

      const deliveries = await ledger.webhooks.deliveries(webhook.id);
      expect(
        deliveries.map((delivery) => [delivery.condition, delivery.status, delivery.attempts]),
      ).toEqual([
        ['recovered', 'delivered', 3],
        ['stalled', 'delivered', 3],
      ]);
      expect(deliveries[1]!.attemptLog.map((attempt) => attempt.status)).toEqual([500, 500, 200]);

      // A later round finds nothing more to send.
      const again = await deliverer.deliverOnce();
      expect(again).toMatchObject({ enqueued: 0, delivered: 0, failed: 0, dead: 0 });
    });

    it('dead-letters a delivery after the attempt limit, with every attempt visible', async () => {
      const refusing = await startReceiver(1_000);
      try {
        const { webhook } = await ledger.webhooks.add(
          { url: refusing.url, conditions: ['finished'], jobId: 'dead-letter-job' },
          policy,
        );
        await ledger.append('dead-letter-job', [
          { type: 'job.started', data: { name: 'x', kind: 'x', project: 'x' } },
          { type: 'job.completed', data: {} },
        ]);
        const deliverer = ledger.webhookDeliverer({ ...fast, maxAttempts: 3 });
        let deliveries = await ledger.webhooks.deliveries(webhook.id);
        for (let round = 0; round < 200 && deliveries[0]?.status !== 'dead'; round += 1) {
          await deliverer.deliverOnce();
          await new Promise((resolve) => setTimeout(resolve, 10));
          deliveries = await ledger.webhooks.deliveries(webhook.id);
        }
        expect(deliveries).toHaveLength(1);
        expect(deliveries[0]).toMatchObject({ status: 'dead', attempts: 3, condition: 'finished' });
        expect(deliveries[0]!.attemptLog.map((attempt) => attempt.status)).toEqual([500, 500, 500]);
        expect(refusing.calls).toHaveLength(3);

        // Sent again on demand: a fresh set of attempts, the earlier ones kept.
        const [dead] = deliveries;
        await ledger.webhooks.redeliver(webhook.id, dead!.id);
        const [again] = await ledger.webhooks.deliveries(webhook.id);
        expect(again).toMatchObject({ status: 'pending', attempts: 0 });
        expect(again!.attemptLog).toHaveLength(3);
        await deliverer.deliverOnce();
        expect(refusing.calls.map((call) => call.id)).toEqual(Array(4).fill(dead!.id));
        const [retried] = await ledger.webhooks.deliveries(webhook.id);
        expect(retried).toMatchObject({ status: 'pending', attempts: 1 });
        expect(retried!.attemptLog).toHaveLength(4);
        await expect(ledger.webhooks.redeliver(webhook.id, randomUUID())).rejects.toThrow(
          /not delivered yet/,
        );
      } finally {
        await refusing.close();
      }
    });

    it('refuses a target the server does not allow, and stores nothing', async () => {
      const before = await ledger.webhooks.list();
      // 127.0.0.2 is loopback and not allowed: refused before any request is made.
      await expect(
        ledger.webhooks.add({ url: 'http://127.0.0.2:9/hook', conditions: ['late'] }, policy),
      ).rejects.toThrow(/url: .*127\.0\.0\.2/);
      await expect(
        ledger.webhooks.add({ url: 'http://localhost:9/hook', conditions: ['late'] }, policy),
      ).rejects.toThrow(/url: /);
      await expect(
        ledger.webhooks.add({ url: 'ftp://127.0.0.1/hook', conditions: ['late'] }, policy),
      ).rejects.toThrow(/url: /);
      await expect(
        ledger.webhooks.add({ url: receiver.url, conditions: ['sometimes' as 'late'] }, policy),
      ).rejects.toThrow(/conditions\[0\]/);
      expect(await ledger.webhooks.list()).toEqual(before);
    });
  });
}
