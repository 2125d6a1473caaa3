import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { parseTokens } from '../src/server/auth.ts';
import { createServer } from '../src/server/server.ts';
import type { Delivery } from '../src/webhooks/webhook-deliveries.ts';
import type { Webhook } from '../src/webhooks/webhook-subscriptions.ts';
import { jsonOf, runHeadway } from './cli-runner.ts';
import { listenOnLoopback } from './listen.ts';
import { storesUnderTest } from './stores.ts';

// `headway webhooks` through a server on loopback (which allows 127.0.0.1 as a target), and
// once on a store opened by the command itself.

/** A receiver on 127.0.0.1 that answers 200 and keeps the delivery ids it was sent. */
async function startReceiver() {
  const received: string[] = [];
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received.push(String(request.headers['headway-delivery']));
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const store = storesUnderTest().find((candidate) => candidate.name === 'pglite')!;

describe('headway webhooks', { timeout: 120_000 }, () => {
  let ledger: Ledger;
  let server: FastifyInstance;
  let url: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    ledger = await store.open();
    server = await createServer({ ledger, webhooks: { allowHosts: ['127.0.0.1'] } });
    url = await listenOnLoopback(server);
    receiver = await startReceiver();
  });

  afterAll(async () => {
    await receiver?.close();
    await server?.close();
    await ledger?.close();
    await store.cleanup();
  });

  const remote = (...args: string[]) => runHeadway(['webhooks', ...args, '--url', url]);

  it('adds, lists, tests, shows deliveries and removes a subscription through a server', async () => {
    const added = await remote('add', receiver.url, '--on', 'failed,stalled', '--project', 'shop');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('shown only once');
    const id = /Added webhook (wh_[0-9a-f]+)/.exec(added.stdout)?.[1];
    expect(id).toBeDefined();
    const webhookId = id!;
    expect(added.stdout).toMatch(/Secret: whsec_\S+/);

    const listed = await remote('list');
    expect(listed.code).toBe(0);
    expect(listed.stdout.split('\n')[0]).toMatch(/^ID\s+URL\s+ON\s+FILTER\s+CREATED$/);
    expect(listed.stdout).toContain(webhookId);
    expect(listed.stdout).toContain(receiver.url);
    expect(listed.stdout).toContain('failed,stalled');
    expect(listed.stdout).toContain('project=shop');

    const tested = await remote('test', webhookId);
    expect(tested.stderr).toBe('');
    expect(tested.code).toBe(0);
    expect(tested.stdout).toContain(`headway webhooks deliveries ${webhookId}`);
    const deliveryId = /test delivery (\S+) for webhook/.exec(tested.stdout)?.[1];
    expect(deliveryId).toBeDefined();

    // The server under test runs no deliverer: the delivery waits.
    const pending = await remote('deliveries', webhookId);
    expect(pending.code).toBe(0);
    expect(pending.stdout.split('\n')[0]).toMatch(
      /^DELIVERY\s+CONDITION\s+JOB\s+STATUS\s+ATTEMPTS\s+LAST\s+CREATED$/,
    );
    expect(pending.stdout).toMatch(
      new RegExp(`${deliveryId}\\s+test\\s+test\\s+pending\\s+0\\s+–`),
    );

    const deliverer = ledger.webhookDeliverer({ allowHosts: ['127.0.0.1'] });
    await deliverer.deliverOnce();
    expect(receiver.received).toEqual([deliveryId]);

    const delivered = jsonOf<Delivery[]>(
      await remote('deliveries', webhookId, '--status', 'delivered', '--json'),
    );
    expect(delivered.map((delivery) => [delivery.id, delivery.status, delivery.attempts])).toEqual([
      [deliveryId, 'delivered', 1],
    ]);
    const table = await remote('deliveries', webhookId, '--limit', '5');
    expect(table.stdout).toMatch(
      new RegExp(`${deliveryId}\\s+test\\s+test\\s+delivered\\s+1\\s+200`),
    );

    // A delivered one is not sent again.
    const again = await remote('redeliver', webhookId, deliveryId!);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('not delivered yet');

    const removed = await remote('remove', webhookId);
    expect(removed.stderr).toBe('');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`Removed webhook ${webhookId}`);
    const after = await remote('list');
    expect(after.code).toBe(0);
    expect(after.stdout).not.toContain(webhookId);
    const all = jsonOf<Webhook[]>(await remote('list', '--removed', '--json'));
    expect(all.find((webhook) => webhook.id === webhookId)?.removedAt).not.toBeNull();
  });

  it('refuses a target the server does not allow, and stores nothing', async () => {
    const before = await ledger.webhooks.list({ includeRemoved: true });
    const run = await remote('add', 'http://127.0.0.2:9/x', '--on', 'failed');
    expect(run.code).not.toBe(0);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('127.0.0.2');
    expect(run.stderr).toContain('loopback');
    expect(await ledger.webhooks.list({ includeRemoved: true })).toEqual(before);
  });

  it('refuses a bad --on value, saying what it expected', async () => {
    const run = await remote('add', receiver.url, '--on', 'failed,exploded');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('expected a comma-separated list of finished, failed');
    expect(run.stderr).toContain("received 'exploded'");
  });

  it('refuses --allow-hosts through a server, whose own allow list rules', async () => {
    const run = await remote('add', receiver.url, '--on', 'failed', '--allow-hosts', '127.0.0.1');
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('--allow-hosts');
    expect(run.stderr).toContain('--webhook-allow-hosts');
  });

  it('names the admin scope when the token lacks it', async () => {
    const token = 'read-only-token-for-webhooks';
    const guarded = await createServer({
      ledger,
      tokens: parseTokens(JSON.stringify({ [token]: ['read'] })),
    });
    const guardedUrl = await listenOnLoopback(guarded);
    try {
      const run = await runHeadway(['webhooks', 'list', '--url', guardedUrl, '--token', token]);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain('admin scope');
    } finally {
      await guarded.close();
    }
  });
});

describe('headway webhooks on a store', { timeout: 120_000 }, () => {
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-webhooks-'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('adds with its own allow list and lists, with no server', async () => {
    const local = (...args: string[]) =>
      runHeadway(['--data-dir', join(folder, 'store'), 'webhooks', ...args]);
    const refused = await local('add', 'http://127.0.0.1:9/hook', '--on', 'finished');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('loopback');

    const added = jsonOf<Webhook & { secret: string }>(
      await local(
        'add',
        'http://127.0.0.1:9/hook',
        '--on',
        'finished,late',
        '--allow-hosts',
        '127.0.0.1',
        '--json',
      ),
    );
    expect(added.secret).toMatch(/^whsec_/);
    expect(added.conditions).toEqual(['finished', 'late']);
    const listed = jsonOf<Webhook[]>(await local('list', '--json'));
    expect(listed.map((webhook) => [webhook.id, webhook.url])).toEqual([
      [added.id, 'http://127.0.0.1:9/hook'],
    ]);
    expect(listed[0]).not.toHaveProperty('secret');
  });
});
