import * as z from 'zod';
import { storableText } from '../../../schema/events.ts';
import type { App } from '../app.ts';
import { adminScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { webhookInputSchema } from '../../webhooks/webhook-subscriptions.ts';
import { defined } from './common.ts';
import type { LedgerWebhooks } from '../../webhooks/ledger-webhooks.ts';

/** The subscriptions, where webhooks may go, and the link their payloads carry. */
export interface WebhookRouteSettings {
  webhooks: LedgerWebhooks;
  /** Hosts allowed despite a loopback, private or link-local address (`--webhook-allow-hosts`). */
  allowHosts: readonly string[];
  /** The server's own URL, for links to job pages; null when unknown. */
  publicUrl: () => string | null;
}

const webhookParams = z.strictObject({ id: storableText(100) });

const deliveriesQuery = z.strictObject({
  status: z.enum(['pending', 'delivered', 'dead']).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).optional(),
});

const listQuery = z.strictObject({
  removed: schemas.booleanText.describe('Include removed subscriptions'),
});

/** Webhook subscriptions and their deliveries: admin scope, on the primary (docs/alerts.md). */
export function webhookRoutes(app: App, settings: WebhookRouteSettings): void {
  const config = adminScope;
  const { allowHosts, webhooks } = settings;

  app.get(
    '/v1/webhooks',
    { config, schema: { querystring: listQuery, summary: 'List webhook subscriptions' } },
    async (request) => ({
      webhooks: await webhooks.list(defined({ includeRemoved: request.query.removed })),
    }),
  );

  app.post(
    '/v1/webhooks',
    {
      config,
      schema: {
        body: webhookInputSchema,
        summary: 'Subscribe a URL to conditions; the answer holds the signing secret, once',
      },
    },
    async (request, reply) => {
      const created = await webhooks.add(request.body, { allowHosts });
      return reply.code(201).send({ ...created.webhook, secret: created.secret });
    },
  );

  app.get(
    '/v1/webhooks/:id',
    { config, schema: { params: webhookParams, summary: 'One webhook subscription' } },
    async (request) => webhooks.get(request.params.id),
  );

  app.delete(
    '/v1/webhooks/:id',
    { config, schema: { params: webhookParams, summary: 'Remove a webhook subscription' } },
    async (request) => webhooks.remove(request.params.id),
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config,
      schema: {
        params: webhookParams,
        querystring: deliveriesQuery,
        summary: "A subscription's deliveries and their attempts, newest first",
      },
    },
    async (request) => ({
      deliveries: await webhooks.deliveries(request.params.id, defined(request.query)),
    }),
  );

  app.post(
    '/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      config,
      schema: {
        params: z.strictObject({ id: storableText(100), deliveryId: storableText(100) }),
        summary: 'Send a dead-lettered delivery again, with a fresh set of attempts',
      },
    },
    async (request, reply) => {
      await webhooks.redeliver(request.params.id, request.params.deliveryId);
      return reply.code(202).send({ deliveryId: request.params.deliveryId, status: 'pending' });
    },
  );

  app.post(
    '/v1/webhooks/:id/test',
    {
      config,
      schema: { params: webhookParams, summary: 'Send a test delivery to a subscription' },
    },
    async (request, reply) => {
      const id = await webhooks.test(request.params.id, settings.publicUrl());
      return reply.code(202).send({ deliveryId: id });
    },
  );
}
