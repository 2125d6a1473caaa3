import { randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import * as z from 'zod';
import type { Database, WebhooksTable } from '../../schema/database.ts';
import { storableText } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { formatLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { parseInput } from '../validation.ts';
import { checkWebhookUrl, maxWebhookUrlLength, resolveWebhookAddresses } from './webhook-target.ts';
import type { WebhookLookup } from './webhook-target.ts';
import { WebhookTargetError } from './webhook-target.ts';

// Webhook subscriptions: what to notify, where, and with which secret (docs/alerts.md).

/** What a subscription can be notified of. */
export const webhookConditions = [
  'finished',
  'failed',
  'cancelled',
  'stalled',
  'recovered',
  'at_risk',
  'late',
  'failure_rate',
] as const;
/** One of `webhookConditions`. */
export type WebhookCondition = (typeof webhookConditions)[number];

/** Most subscriptions at once, so that a sweep of them stays cheap. */
export const maxWebhooks = 1_000;

/** A new subscription, as `POST /v1/webhooks` and `headway webhooks add` take it. */
export const webhookInputSchema = z.strictObject({
  url: z.string().min(1).max(maxWebhookUrlLength),
  conditions: z.array(z.enum(webhookConditions)).min(1).max(webhookConditions.length),
  project: storableText(limits.nameLength).optional(),
  kind: storableText(limits.nameLength).optional(),
  jobId: storableText(limits.idLength).optional(),
  /** The HMAC key; one is made when absent (and shown once). */
  secret: z.string().min(16).max(200).optional(),
  description: storableText(500).optional(),
});
/** A new subscription's fields. */
export type WebhookInput = z.input<typeof webhookInputSchema>;

/** A subscription as the API shows it: never its secret. */
export interface Webhook {
  id: string;
  url: string;
  conditions: WebhookCondition[];
  project: string | null;
  kind: string | null;
  jobId: string | null;
  description: string | null;
  createdAt: string;
  removedAt: string | null;
  /** The log cursor of the last event it has looked at. */
  checkpoint: string;
}

/** Where webhooks may go: hosts allowed despite a loopback, private or link-local address. */
export interface WebhookTargetPolicy {
  allowHosts: readonly string[];
  /** DNS lookup; the system's by default. */
  lookup?: WebhookLookup;
}

/**
 * Subscribes a URL to conditions from now on (earlier events are not delivered). The URL must
 * resolve to public addresses unless its host is allowed; the secret is returned here only.
 *
 * @example
 * const { webhook, secret } = await createWebhook(db, { url, conditions: ['stalled'] }, policy, head);
 */
export async function createWebhook(
  db: Kysely<Database>,
  input: WebhookInput,
  policy: WebhookTargetPolicy,
  from: LogCursor,
): Promise<{ webhook: Webhook; secret: string }> {
  const parsed = parseInput(webhookInputSchema, input);
  await checkTarget(parsed.url, policy);
  const count = await db
    .selectFrom('webhooks')
    .select((eb) => eb.fn.countAll<string>().as('count'))
    .where('removed_at', 'is', null)
    .executeTakeFirstOrThrow();
  if (Number(count.count) >= maxWebhooks) {
    throw new InvalidInputError([
      {
        path: 'url',
        message: `expected at most ${maxWebhooks} webhooks, received one more; remove some first`,
      },
    ]);
  }
  const secret = parsed.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
  const row = await db
    .insertInto('webhooks')
    .values({
      webhook_id: `wh_${randomBytes(8).toString('hex')}`,
      url: parsed.url,
      secret,
      project: parsed.project ?? null,
      kind: parsed.kind ?? null,
      job_id: parsed.jobId ?? null,
      conditions: [...new Set(parsed.conditions)],
      description: parsed.description ?? null,
      transaction_id: from.transactionId.toString(),
      position: from.position.toString(),
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { webhook: toWebhook(row), secret };
}

/** Refuses a URL of the wrong shape, or whose host resolves where webhooks may not go. */
async function checkTarget(url: string, policy: WebhookTargetPolicy): Promise<void> {
  const parsed = (() => {
    try {
      return checkWebhookUrl(url, policy.allowHosts);
    } catch (error) {
      if (error instanceof WebhookTargetError) {
        throw new InvalidInputError([{ path: 'url', message: error.message }]);
      }
      throw error;
    }
  })();
  try {
    await withTimeout(
      resolveWebhookAddresses(parsed.hostname, policy.allowHosts, policy.lookup),
      lookupTimeoutMs,
    );
  } catch (error) {
    // A name that does not resolve (or not in time) is the caller's to fix, like a refused one.
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidInputError([
      {
        path: 'url',
        message:
          error instanceof WebhookTargetError
            ? reason
            : `expected a host that resolves, received ${JSON.stringify(parsed.hostname)} (${reason})`,
      },
    ]);
  }
}

/** How long resolving a new subscription's host may take. */
const lookupTimeoutMs = 5_000;

/** `promise`, or a rejection once `ms` have passed. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The subscriptions, oldest first; removed ones too with `includeRemoved`. */
export async function listWebhooks(
  db: Kysely<Database>,
  options: { includeRemoved?: boolean } = {},
): Promise<Webhook[]> {
  const rows = await db
    .selectFrom('webhooks')
    .selectAll()
    .$if(!options.includeRemoved, (query) => query.where('removed_at', 'is', null))
    .orderBy('created_at')
    .orderBy('webhook_id')
    .execute();
  return rows.map(toWebhook);
}

/** One subscription, removed or not; throws `NotFoundError` for an unknown id. */
export async function readWebhook(db: Kysely<Database>, webhookId: string): Promise<Webhook> {
  const row = await db
    .selectFrom('webhooks')
    .selectAll()
    .where('webhook_id', '=', webhookId)
    .executeTakeFirst();
  if (!row) throw new NotFoundError(`Webhook ${JSON.stringify(webhookId)}`);
  return toWebhook(row);
}

/**
 * Removes a subscription: it delivers nothing more, pending deliveries included; it and its
 * deliveries stay readable. Removing it again changes nothing.
 */
export async function removeWebhook(db: Kysely<Database>, webhookId: string): Promise<Webhook> {
  await db
    .updateTable('webhooks')
    .set({ removed_at: new Date() })
    .where('webhook_id', '=', webhookId)
    .where('removed_at', 'is', null)
    .execute();
  return readWebhook(db, webhookId);
}

function toWebhook(row: Selectable<WebhooksTable>): Webhook {
  return {
    id: row.webhook_id,
    url: row.url,
    conditions: row.conditions as WebhookCondition[],
    project: row.project,
    kind: row.kind,
    jobId: row.job_id,
    description: row.description,
    createdAt: new Date(row.created_at).toISOString(),
    removedAt: row.removed_at === null ? null : new Date(row.removed_at).toISOString(),
    checkpoint: formatLogCursor({
      transactionId: BigInt(row.transaction_id),
      position: BigInt(row.position),
    }),
  };
}
