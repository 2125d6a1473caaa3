import type { Delivery } from '../webhooks/webhook-deliveries.ts';
import type { Webhook, WebhookInput } from '../webhooks/webhook-subscriptions.ts';
import type { ClientHttp } from './http.ts';

// The client's calls of the webhook routes (admin scope): subscriptions and their deliveries.

/** Which deliveries `HeadwayClient.webhookDeliveries` lists. */
export interface WebhookDeliveriesFilter {
  status?: Delivery['status'];
  /** At most this many, newest first (the server allows 1 to 1,000). */
  limit?: number;
}

/** `GET /v1/webhooks`: the subscriptions, oldest first; removed ones too with `includeRemoved`. */
export async function listWebhooks(
  http: ClientHttp,
  options: { includeRemoved?: boolean } = {},
): Promise<Webhook[]> {
  const query = options.includeRemoved ? '?removed=true' : '';
  return (await http.request<{ webhooks: Webhook[] }>('GET', `/v1/webhooks${query}`)).webhooks;
}

/** `POST /v1/webhooks`: a new subscription, with the secret that signs its requests (shown once). */
export async function addWebhook(
  http: ClientHttp,
  input: WebhookInput,
): Promise<{ webhook: Webhook; secret: string }> {
  const { secret, ...webhook } = await http.request<Webhook & { secret: string }>(
    'POST',
    '/v1/webhooks',
    input,
  );
  return { webhook, secret };
}

/** `GET /v1/webhooks/:id`: one subscription, removed or not. */
export function readWebhook(http: ClientHttp, webhookId: string): Promise<Webhook> {
  return http.request('GET', webhookPath(webhookId));
}

/** `DELETE /v1/webhooks/:id`: stops a subscription, pending deliveries included. */
export function removeWebhook(http: ClientHttp, webhookId: string): Promise<Webhook> {
  return http.request('DELETE', webhookPath(webhookId));
}

/** `GET /v1/webhooks/:id/deliveries`: a subscription's deliveries and attempts, newest first. */
export async function listWebhookDeliveries(
  http: ClientHttp,
  webhookId: string,
  filter: WebhookDeliveriesFilter = {},
): Promise<Delivery[]> {
  const query = new URLSearchParams();
  if (filter.status !== undefined) query.set('status', filter.status);
  if (filter.limit !== undefined) query.set('limit', String(filter.limit));
  const search = query.size > 0 ? `?${query.toString()}` : '';
  const page = await http.request<{ deliveries: Delivery[] }>(
    'GET',
    `${webhookPath(webhookId)}/deliveries${search}`,
  );
  return page.deliveries;
}

/** `POST /v1/webhooks/:id/test`: enqueues a test delivery, which the server sends. */
export function testWebhook(http: ClientHttp, webhookId: string): Promise<{ deliveryId: string }> {
  return http.request('POST', `${webhookPath(webhookId)}/test`);
}

/** `POST /v1/webhooks/:id/deliveries/:deliveryId/redeliver`: sends a dead letter again. */
export async function redeliverWebhook(
  http: ClientHttp,
  webhookId: string,
  deliveryId: string,
): Promise<void> {
  await http.request(
    'POST',
    `${webhookPath(webhookId)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`,
  );
}

function webhookPath(webhookId: string): string {
  return `/v1/webhooks/${encodeURIComponent(webhookId)}`;
}
