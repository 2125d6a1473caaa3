import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { LogReader } from '../store/log-reads.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { enqueueTestDelivery, listDeliveries, redeliver } from './webhook-deliveries.ts';
import type { Delivery } from './webhook-deliveries.ts';
import {
  createWebhook,
  listWebhooks,
  readWebhook,
  removeWebhook,
} from './webhook-subscriptions.ts';
import type { Webhook, WebhookInput, WebhookTargetPolicy } from './webhook-subscriptions.ts';

/**
 * A ledger's webhook subscriptions and their deliveries (`ledger.webhooks`); a server or
 * `ledger.deliverWebhooks()` sends them (docs/alerts.md).
 *
 * @example
 * const { webhook, secret } = await ledger.webhooks.add({ url: 'https://hooks.example.com/headway', conditions: ['stalled', 'late'] });
 */
export class LedgerWebhooks {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: LogReader,
  ) {}

  /**
   * Subscribes a URL from now on; the secret that signs its requests is returned here only.
   * Targets on loopback, private or link-local addresses are refused unless `allowHosts`
   * names their host.
   */
  async add(
    input: WebhookInput,
    policy: WebhookTargetPolicy = { allowHosts: [] },
  ): Promise<{ webhook: Webhook; secret: string }> {
    return createWebhook(this.db, input, policy, await this.log.liveCursor());
  }

  /** The subscriptions, oldest first; removed ones too with `includeRemoved`. */
  list(options: { includeRemoved?: boolean } = {}): Promise<Webhook[]> {
    return listWebhooks(this.db, options);
  }

  /** One subscription; throws `NotFoundError` for an unknown id. */
  get(webhookId: string): Promise<Webhook> {
    return readWebhook(this.db, webhookId);
  }

  /** Stops a subscription, pending deliveries included; it stays readable. */
  remove(webhookId: string): Promise<Webhook> {
    return removeWebhook(this.db, webhookId);
  }

  /** A subscription's deliveries and their attempts, newest first. */
  async deliveries(
    webhookId: string,
    options: { limit?: number; status?: Delivery['status'] } = {},
  ): Promise<Delivery[]> {
    await readWebhook(this.db, webhookId);
    return listDeliveries(this.db, webhookId, options);
  }

  /** Deliveries pending (retries included) and dead-lettered, across current subscriptions. */
  async deliveryCounts(): Promise<{ pending: number; dead: number }> {
    // A removed subscription's pending deliveries will never be sent: not counted.
    const rows = await this.db
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhooks as w', 'w.webhook_id', 'd.webhook_id')
      .select(['d.status', (eb) => eb.fn.countAll<string>().as('count')])
      .where('d.status', 'in', ['pending', 'dead'])
      .where('w.removed_at', 'is', null)
      .groupBy('d.status')
      .execute();
    const count = (status: string) => Number(rows.find((row) => row.status === status)?.count ?? 0);
    return { pending: count('pending'), dead: count('dead') };
  }

  /**
   * Sends a dead-lettered delivery again, with a fresh set of attempts (its earlier ones
   * stay in its log); throws `NotFoundError` when the subscription has no such delivery
   * that is not delivered yet.
   *
   * @example
   * for (const dead of await ledger.webhooks.deliveries(id, { status: 'dead' })) await ledger.webhooks.redeliver(id, dead.id);
   */
  async redeliver(webhookId: string, deliveryId: string): Promise<void> {
    await readWebhook(this.db, webhookId);
    const valid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(
      deliveryId,
    );
    if (!valid || !(await redeliver(this.db, webhookId, deliveryId))) {
      throw new NotFoundError(
        `Delivery ${JSON.stringify(deliveryId)} of webhook ${webhookId}, not delivered yet,`,
      );
    }
  }

  /** Enqueues a test delivery, sent and retried like the others; returns its id. */
  async test(webhookId: string, publicUrl: string | null = null): Promise<string> {
    const webhook = await readWebhook(this.db, webhookId);
    if (webhook.removedAt !== null) {
      throw new InvalidInputError([
        {
          path: 'webhookId',
          message: `expected a webhook not removed, received ${webhookId}, removed at ${webhook.removedAt}`,
        },
      ]);
    }
    return enqueueTestDelivery(this.db, webhookId, publicUrl);
  }
}
