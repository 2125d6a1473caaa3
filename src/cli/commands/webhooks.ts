import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.ts';
import type { Delivery } from '../../webhooks/webhook-deliveries.ts';
import { webhookConditions } from '../../webhooks/webhook-subscriptions.ts';
import type {
  Webhook,
  WebhookCondition,
  WebhookInput,
} from '../../webhooks/webhook-subscriptions.ts';
import { printJson, printLines } from '../context.ts';
import { formatTable } from '../format.ts';
import { addServerOptions, withSource } from '../remote.ts';
import type { CommandSource } from '../remote.ts';

/** What the `webhooks` subcommands do, on a store opened here or through a server. */
interface WebhookCalls {
  add(input: WebhookInput): Promise<{ webhook: Webhook; secret: string }>;
  list(includeRemoved: boolean): Promise<Webhook[]>;
  remove(webhookId: string): Promise<Webhook>;
  test(webhookId: string): Promise<string>;
  redeliver(webhookId: string, deliveryId: string): Promise<void>;
  deliveries(webhookId: string, filter: DeliveryFilter): Promise<Delivery[]>;
}

interface DeliveryFilter {
  status?: Delivery['status'];
  limit?: number;
}

const deliveryStatuses = ['pending', 'delivered', 'dead'] as const;

/** Most deliveries one call lists, as `GET /v1/webhooks/:id/deliveries` allows. */
const maxDeliveries = 1_000;

/** Parses `--on`: a comma-separated list of webhook conditions. */
function parseConditions(value: string): WebhookCondition[] {
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const expected = `a comma-separated list of ${webhookConditions.join(', ')}`;
  if (names.length === 0)
    throw new InvalidArgumentError(`expected ${expected}, received '${value}'`);
  for (const name of names) {
    if (!(webhookConditions as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`expected ${expected}, received '${name}'`);
    }
  }
  return [...new Set(names as WebhookCondition[])];
}

/** Parses `--allow-hosts`: comma-separated host names. */
function parseHosts(value: string): string[] {
  return value
    .split(',')
    .map((host) => host.trim())
    .filter(Boolean);
}

function parseDeliveryStatus(value: string): Delivery['status'] {
  if (!(deliveryStatuses as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(
      `expected a delivery status (${deliveryStatuses.join(', ')}), received '${value}'`,
    );
  }
  return value as Delivery['status'];
}

function parseDeliveryLimit(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1 || parsed > maxDeliveries) {
    throw new InvalidArgumentError(
      `expected a whole number from 1 to ${maxDeliveries}, received '${value}'`,
    );
  }
  return parsed;
}

/**
 * Runs `action` with the webhook calls of the store or server the command names. On a
 * server `allowHosts` is refused: that server's `--webhook-allow-hosts` rules the targets.
 */
function withWebhooks<T>(
  command: Command,
  action: (calls: WebhookCalls) => Promise<T>,
  allowHosts?: readonly string[],
): Promise<T> {
  return withSource(
    command,
    async (source) => {
      if (source.kind === 'server' && allowHosts !== undefined) {
        throw new InvalidInputError([
          {
            path: '--allow-hosts',
            message: `expected no --allow-hosts when working through the server at ${source.url} (its own --webhook-allow-hosts decides where webhooks may go), received '${allowHosts.join(',')}'`,
          },
        ]);
      }
      if (source.kind === 'ledger') return action(ledgerCalls(source, allowHosts ?? []));
      return action(serverCalls(source));
    },
    ['admin'],
  );
}

function ledgerCalls(
  source: Extract<CommandSource, { kind: 'ledger' }>,
  allowHosts: readonly string[],
): WebhookCalls {
  const { webhooks } = source.ledger;
  return {
    add: (input) => webhooks.add(input, { allowHosts }),
    list: (includeRemoved) => webhooks.list({ includeRemoved }),
    remove: (webhookId) => webhooks.remove(webhookId),
    // No server here to know its own URL: the payload carries no link.
    test: (webhookId) => webhooks.test(webhookId, null),
    deliveries: (webhookId, filter) => webhooks.deliveries(webhookId, filter),
    redeliver: (webhookId, deliveryId) => webhooks.redeliver(webhookId, deliveryId),
  };
}

function serverCalls(source: Extract<CommandSource, { kind: 'server' }>): WebhookCalls {
  const { client } = source;
  return {
    add: (input) => client.addWebhook(input),
    list: (includeRemoved) => client.webhooks({ includeRemoved }),
    remove: (webhookId) => client.removeWebhook(webhookId),
    test: async (webhookId) => (await client.testWebhook(webhookId)).deliveryId,
    deliveries: (webhookId, filter) => client.webhookDeliveries(webhookId, filter),
    redeliver: (webhookId, deliveryId) => client.redeliverWebhook(webhookId, deliveryId),
  };
}

/** `--url` and `--token`, naming the admin scope the webhook routes need. */
function withAdminOptions(command: Command): Command {
  return addServerOptions(command, ['admin']);
}

/** `2026-11-22 10:00:00` from an ISO time. */
function shortTime(iso: string | null): string {
  return iso?.replace('T', ' ').slice(0, 19) ?? '–';
}

/** Which jobs a subscription follows, in one cell. */
function filterOf(webhook: Webhook): string {
  const parts = [
    webhook.project === null ? null : `project=${webhook.project}`,
    webhook.kind === null ? null : `kind=${webhook.kind}`,
    webhook.jobId === null ? null : `job=${webhook.jobId}`,
  ].filter((part) => part !== null);
  return parts.length === 0 ? 'all jobs' : parts.join(' ');
}

/** A delivery's last attempt: the HTTP status it got, else the error. */
function lastAttempt(delivery: Delivery): string {
  const last = delivery.attemptLog.at(-1);
  if (!last) return '–';
  if (last.status !== null) return String(last.status);
  return last.error ?? '–';
}

/**
 * `headway webhooks add|list|remove|test|deliveries`: webhook subscriptions and their
 * deliveries, on the store or through a server (`--url`, admin scope).
 */
export function registerWebhooks(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .description('webhook subscriptions: notify a URL when jobs finish, fail, stall, …');

  withAdminOptions(
    webhooks
      .command('add')
      .description('subscribe a URL to conditions; prints the signing secret, once')
      .argument('<url>', 'where to POST the notifications')
      .requiredOption(
        '--on <conditions>',
        `comma-separated conditions: ${webhookConditions.join(', ')}`,
        parseConditions,
      )
      .option('--project <project>', 'only jobs of this project')
      .option('--kind <kind>', 'only jobs of this kind')
      .option('--job <id>', 'only this job')
      .option('--secret <secret>', 'the signing secret (16 to 200 characters; default: a new one)')
      .option('--description <text>', 'what the subscription is for')
      .option(
        '--allow-hosts <hosts>',
        'comma-separated hosts allowed although they resolve to loopback, private or link-local addresses (store only; a server follows its --webhook-allow-hosts)',
        parseHosts,
      )
      .option('--json', 'print JSON'),
  ).action(
    async (
      url: string,
      options: {
        on: WebhookCondition[];
        project?: string;
        kind?: string;
        job?: string;
        secret?: string;
        description?: string;
        allowHosts?: string[];
        json?: boolean;
      },
      command: Command,
    ) => {
      const input: WebhookInput = {
        url,
        conditions: options.on,
        ...(options.project === undefined ? {} : { project: options.project }),
        ...(options.kind === undefined ? {} : { kind: options.kind }),
        ...(options.job === undefined ? {} : { jobId: options.job }),
        ...(options.secret === undefined ? {} : { secret: options.secret }),
        ...(options.description === undefined ? {} : { description: options.description }),
      };
      const { webhook, secret } = await withWebhooks(
        command,
        (calls) => calls.add(input),
        options.allowHosts,
      );
      if (options.json) return printJson({ ...webhook, secret });
      printLines([
        `Added webhook ${webhook.id}: ${webhook.url} on ${webhook.conditions.join(', ')} (${filterOf(webhook)})`,
        `Secret: ${secret}`,
        'The secret is shown only once: keep it to check the Headway-Signature of each request.',
      ]);
    },
  );

  withAdminOptions(
    webhooks
      .command('list')
      .description('the webhook subscriptions, oldest first')
      .option('--removed', 'removed ones too')
      .option('--json', 'print JSON'),
  ).action(async (options: { removed?: boolean; json?: boolean }, command: Command) => {
    const removed = options.removed === true;
    const list = await withWebhooks(command, (calls) => calls.list(removed));
    if (options.json) return printJson(list);
    if (list.length === 0) {
      return printLines([
        'No webhooks. Add one with `headway webhooks add <url> --on failed,stalled`.',
      ]);
    }
    const header = ['ID', 'URL', 'ON', 'FILTER', 'CREATED', ...(removed ? ['REMOVED'] : [])];
    printLines(
      formatTable(
        header,
        list.map((webhook) => [
          webhook.id,
          webhook.url,
          webhook.conditions.join(','),
          filterOf(webhook),
          shortTime(webhook.createdAt),
          ...(removed ? [webhook.removedAt === null ? '' : shortTime(webhook.removedAt)] : []),
        ]),
      ),
    );
  });

  withAdminOptions(
    webhooks
      .command('remove')
      .description('stop a subscription, pending deliveries included; it stays readable')
      .argument('<id>', 'the webhook id')
      .option('--json', 'print JSON'),
  ).action(async (webhookId: string, options: { json?: boolean }, command: Command) => {
    const webhook = await withWebhooks(command, (calls) => calls.remove(webhookId));
    if (options.json) return printJson(webhook);
    printLines([
      `Removed webhook ${webhook.id} (${webhook.url}): nothing more is delivered to it, pending deliveries included.`,
    ]);
  });

  withAdminOptions(
    webhooks
      .command('test')
      .description('enqueue a test delivery, sent and retried like the others')
      .argument('<id>', 'the webhook id')
      .option('--json', 'print JSON'),
  ).action(async (webhookId: string, options: { json?: boolean }, command: Command) => {
    const deliveryId = await withWebhooks(command, (calls) => calls.test(webhookId));
    if (options.json) return printJson({ deliveryId });
    printLines([
      `Enqueued test delivery ${deliveryId} for webhook ${webhookId}.`,
      `The running Headway server (\`headway serve\`) sends it; \`headway webhooks deliveries ${webhookId}\` shows the attempts.`,
    ]);
  });

  withAdminOptions(
    webhooks
      .command('redeliver')
      .description('send a dead-lettered delivery again, with a fresh set of attempts')
      .argument('<id>', 'the webhook id')
      .argument('<delivery>', 'the delivery id (see `headway webhooks deliveries <id>`)'),
  ).action(async (webhookId: string, deliveryId: string, _options: object, command: Command) => {
    await withWebhooks(command, (calls) => calls.redeliver(webhookId, deliveryId));
    printLines([
      `Delivery ${deliveryId} of webhook ${webhookId} is pending again; the running Headway server sends it.`,
    ]);
  });

  withAdminOptions(
    webhooks
      .command('deliveries')
      .description("a subscription's deliveries and their attempts, newest first")
      .argument('<id>', 'the webhook id')
      .option(
        '--status <status>',
        `only deliveries in this status (${deliveryStatuses.join(', ')})`,
        parseDeliveryStatus,
      )
      .option('--limit <n>', `at most this many (up to ${maxDeliveries})`, parseDeliveryLimit)
      .option('--json', 'print JSON'),
  ).action(
    async (
      webhookId: string,
      options: { status?: Delivery['status']; limit?: number; json?: boolean },
      command: Command,
    ) => {
      const filter: DeliveryFilter = {
        ...(options.status === undefined ? {} : { status: options.status }),
        ...(options.limit === undefined ? {} : { limit: options.limit }),
      };
      const deliveries = await withWebhooks(command, (calls) =>
        calls.deliveries(webhookId, filter),
      );
      if (options.json) return printJson(deliveries);
      if (deliveries.length === 0) return printLines([`No deliveries for webhook ${webhookId}.`]);
      printLines(
        formatTable(
          ['DELIVERY', 'CONDITION', 'JOB', 'STATUS', 'ATTEMPTS', 'LAST', 'CREATED'],
          deliveries.map((delivery) => [
            delivery.id,
            delivery.condition,
            delivery.jobId,
            delivery.status,
            String(delivery.attempts),
            lastAttempt(delivery),
            shortTime(delivery.createdAt),
          ]),
        ),
      );
    },
  );
}
