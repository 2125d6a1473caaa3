import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { v5 as uuidFromName } from 'uuid';
import type { Database } from '../../schema/database.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { describeEvent } from '../../projections/job-timeline.ts';
import { compareLogCursors } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import type { JobSnapshot } from '../../projections/job-rollup.ts';
import type { LogReader } from '../store/log-reads.ts';
import { postWebhook } from './post-webhook.ts';
import { signatureHeader, signWebhook } from './webhook-signature.ts';
import { webhookConditionOf, webhookEventTypes } from './webhook-events.ts';
import type { WebhookCondition } from './webhook-subscriptions.ts';

// Deliveries: enqueued from the log once per subscription and event (the insert and the
// checkpoint move commit together), then sent at least once, retried with backoff and
// jitter, and dead-lettered after the attempt limit (docs/alerts.md, "Webhooks").

/** The namespace of delivery ids (a fixed UUID): one id per subscription and event. */
const deliveryIdNamespace = '0e4a2c57-61d3-4b1e-8f0a-9b7d3c5e2a18';

/** The body of a webhook request. */
export interface WebhookPayload {
  /** The delivery id: the same on every attempt, for the receiver to dedupe. */
  id: string;
  webhookId: string;
  condition: WebhookCondition | 'test';
  /** When the event occurred (ISO). */
  occurredAt: string;
  /** One line for people: the job, what happened, where it stands. */
  summary: string;
  job: {
    id: string;
    name: string | null;
    kind: string | null;
    project: string | null;
    status: string;
    percent: number;
    processed: number;
    total: number | null;
  };
  /** The event's data: the detail of a condition, the error of a failure. */
  detail: unknown;
  /** The job's page on the dashboard, when the server knows its own URL. */
  url: string | null;
}

/** What enqueuing and sending need. */
export interface WebhookDeliveryContext {
  /** The primary: deliveries and checkpoints are written there. */
  db: Kysely<Database>;
  /** The primary's log. */
  log: LogReader;
  /** These jobs' progress (unknown ones left out), for the payloads and the filters. */
  progressOf(jobIds: readonly string[]): Promise<Map<string, JobSnapshot>>;
}

/** Events read per page while enqueuing, at most. */
const enqueuePage = 1_000;
/** Delivery rows one page may make (events × subscriptions), bounding memory. */
const rowsPerPage = 5_000;
/** Rows per insert statement: 6 parameters each, well below PostgreSQL's 65,535. */
const rowsPerInsert = 1_000;

interface Subscription {
  id: string;
  conditions: Set<string>;
  project: string | null;
  kind: string | null;
  jobId: string | null;
  cursor: LogCursor;
}

/**
 * Reads the log past the subscriptions' checkpoints and enqueues the deliveries its events
 * call for; each page's inserts and checkpoint moves commit together. Returns how many
 * deliveries were enqueued.
 */
export async function enqueueDeliveries(
  context: WebhookDeliveryContext,
  publicUrl: string | null,
): Promise<number> {
  let enqueued = 0;
  for (;;) {
    const subscriptions = await activeSubscriptions(context.db);
    if (subscriptions.length === 0) return enqueued;
    const from = subscriptions.reduce(
      (oldest, sub) => (compareLogCursors(sub.cursor, oldest) < 0 ? sub.cursor : oldest),
      subscriptions[0]!.cursor,
    );
    // Taken before the read: every event a gap-safe read can see now precedes it.
    const head = await context.log.liveCursor();
    // Rows per page are events × subscriptions: the page shrinks as subscriptions grow.
    const limit = Math.max(
      1,
      Math.min(enqueuePage, Math.floor(rowsPerPage / subscriptions.length)),
    );
    const page = await context.log.readLog(
      { after: from, types: webhookEventTypes, limit },
      { gapSafe: true },
    );
    const full = page.events.length === limit;
    // A page that is not full read everything up to the head: the next read starts there,
    // not at the last matching event, so it does not scan the same item events again.
    const next = full || compareLogCursors(head, page.next) < 0 ? page.next : head;
    const rows = await deliveriesOf(context, subscriptions, page.events, publicUrl);
    await context.db.transaction().execute(async (trx) => {
      for (let start = 0; start < rows.length; start += rowsPerInsert) {
        const inserted = await trx
          .insertInto('webhook_deliveries')
          .values(rows.slice(start, start + rowsPerInsert))
          .onConflict((conflict) => conflict.column('delivery_id').doNothing())
          .executeTakeFirst();
        enqueued += Number(inserted.numInsertedOrUpdatedRows ?? 0);
      }
      await moveCheckpoints(trx, subscriptions, next);
    });
    if (!full) return enqueued;
  }
}

async function activeSubscriptions(db: Kysely<Database>): Promise<Subscription[]> {
  const rows = await db
    .selectFrom('webhooks')
    .select(['webhook_id', 'conditions', 'project', 'kind', 'job_id', 'transaction_id', 'position'])
    .where('removed_at', 'is', null)
    .execute();
  return rows.map((row) => ({
    id: row.webhook_id,
    conditions: new Set(row.conditions),
    project: row.project,
    kind: row.kind,
    jobId: row.job_id,
    cursor: { transactionId: BigInt(row.transaction_id), position: BigInt(row.position) },
  }));
}

/** Moves each subscription's checkpoint up to `next`; never back. */
async function moveCheckpoints(
  db: Kysely<Database>,
  subscriptions: readonly Subscription[],
  next: LogCursor,
): Promise<void> {
  const ids = subscriptions
    .filter((sub) => compareLogCursors(sub.cursor, next) < 0)
    .map((sub) => sub.id);
  if (ids.length === 0) return;
  await db
    .updateTable('webhooks')
    .set({ transaction_id: next.transactionId.toString(), position: next.position.toString() })
    .where('webhook_id', 'in', ids)
    .where(
      sql<boolean>`(transaction_id, position) < (${next.transactionId.toString()}::xid8, ${next.position.toString()}::bigint)`,
    )
    .execute();
}

/** The delivery rows a page of events calls for. */
async function deliveriesOf(
  context: WebhookDeliveryContext,
  subscriptions: readonly Subscription[],
  events: readonly RecordedEvent[],
  publicUrl: string | null,
) {
  // Every job the page names, read at once: a status read per event would be the cost.
  const named = new Set<string>();
  for (const event of events) if (webhookConditionOf(event) !== null) named.add(event.streamId);
  const progresses = await context.progressOf([...named]);
  const rows = [];
  for (const event of events) {
    const condition = webhookConditionOf(event);
    if (condition === null) continue;
    const cursor = { transactionId: event.transactionId, position: event.position };
    const due = subscriptions.filter(
      (sub) =>
        compareLogCursors(sub.cursor, cursor) < 0 &&
        sub.conditions.has(condition) &&
        (sub.jobId === null || sub.jobId === event.streamId),
    );
    if (due.length === 0) continue;
    const progress = progresses.get(event.streamId) ?? null;
    for (const sub of due) {
      if (sub.project !== null && progress?.project !== sub.project) continue;
      if (sub.kind !== null && progress?.kind !== sub.kind) continue;
      const id = uuidFromName(`${sub.id}\u0000${event.eventId}`, deliveryIdNamespace);
      const payload = payloadOf(id, sub.id, condition, event, progress, publicUrl);
      rows.push({
        delivery_id: id,
        webhook_id: sub.id,
        job_id: event.streamId,
        condition,
        event_position: event.position.toString(),
        payload: JSON.stringify(payload),
      });
    }
  }
  return rows;
}

/** The payload of one delivery. */
export function payloadOf(
  id: string,
  webhookId: string,
  condition: WebhookCondition | 'test',
  event: Pick<RecordedEvent, 'streamId' | 'occurredAt'> & Partial<RecordedEvent>,
  progress: JobSnapshot | null,
  publicUrl: string | null,
): WebhookPayload {
  const job = {
    id: event.streamId,
    name: progress?.name ?? null,
    kind: progress?.kind ?? null,
    project: progress?.project ?? null,
    status: progress?.status ?? 'unknown',
    percent: Math.round((progress?.percent ?? 0) * 100) / 100,
    processed: progress?.processed ?? 0,
    total: progress?.total ?? null,
  };
  const what = event.type ? describeEvent(event as RecordedEvent) : condition;
  const figures = `${job.processed}${job.total === null ? '' : `/${job.total}`}, ${job.percent}%`;
  return {
    id,
    webhookId,
    condition,
    occurredAt: event.occurredAt.toISOString(),
    summary: `${job.name ?? job.id} (${job.kind ?? '?'}, ${job.project ?? '?'}): ${what}; ${job.status}, ${figures}`,
    job,
    detail: event.data ?? null,
    url:
      publicUrl === null
        ? null
        : `${publicUrl.replace(/\/$/, '')}/jobs/${encodeURIComponent(job.id)}`,
  };
}

/** How deliveries are sent. */
export interface DeliveryPolicy {
  /** Hosts allowed despite a loopback, private or link-local address. */
  allowHosts: readonly string[];
  /** Bound of one request (default 10,000 ms). */
  timeoutMs: number;
  /** Response bytes read and kept (default 1,024). */
  maxResponseBytes: number;
  /** Attempts before a delivery is dead-lettered (default 8). */
  maxAttempts: number;
  /** The first retry's delay, doubling each time up to `maxDelayMs`, with jitter (default 1 s, 1 h). */
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * The policy's defaults: 10 s per request; 16 attempts, the waits doubling from 1 s to 1 hour
 * (about 2 to 4 hours in all, with jitter), so a receiver may be down that long and lose
 * nothing; 1 KiB of each answer kept.
 */
export const defaultDeliveryPolicy: DeliveryPolicy = {
  allowHosts: [],
  timeoutMs: 10_000,
  maxResponseBytes: 1_024,
  maxAttempts: 16,
  baseDelayMs: 1_000,
  maxDelayMs: 60 * 60_000,
};

/** One attempt, as the deliveries list shows it. */
export interface DeliveryAttempt {
  at: string;
  status: number | null;
  error: string | null;
  durationMs: number;
  /** The start of the response body, capped. */
  response: string;
}

/** The wait before attempt `attempt + 1` (after `attempt` failures): doubling, capped, jittered. */
export function retryDelayMs(attempt: number, policy: DeliveryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Deliveries sent per round, and at most this many requests at once. */
const sendBatch = 100;
const sendConcurrency = 8;

/** What one round of sending did. */
export interface SendReport {
  delivered: number;
  failed: number;
  dead: number;
  /** How long until the next pending delivery is due (ms, by the database's clock); null for none. */
  nextDueInMs: number | null;
}

/**
 * Sends the pending deliveries that are due, each once, and records each attempt: delivered
 * on a 2xx, else retried later, or dead after the last attempt.
 */
export async function sendDueDeliveries(
  db: Kysely<Database>,
  policy: DeliveryPolicy,
  signal?: AbortSignal,
): Promise<SendReport> {
  const report: SendReport = { delivered: 0, failed: 0, dead: 0, nextDueInMs: null };
  const due = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhooks as w', 'w.webhook_id', 'd.webhook_id')
    .select(['d.delivery_id', 'd.condition', 'd.payload', 'd.attempts', 'w.url', 'w.secret'])
    .where('d.status', '=', 'pending')
    .where('w.removed_at', 'is', null)
    .where('d.next_attempt_at', '<=', sql<Date>`now()`)
    // One job's deliveries to one receiver go in order: a later one waits for the earlier
    // one to be delivered or dead-lettered.
    .where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('webhook_deliveries as e')
            .select('e.delivery_id')
            .whereRef('e.webhook_id', '=', 'd.webhook_id')
            .whereRef('e.job_id', '=', 'd.job_id')
            .where('e.status', '=', 'pending')
            .whereRef('e.event_position', '<', 'd.event_position'),
        ),
      ),
    )
    .orderBy('d.next_attempt_at')
    .orderBy('d.event_position')
    .limit(sendBatch)
    .execute();
  const send = async (delivery: (typeof due)[number]): Promise<void> => {
    const body = JSON.stringify(delivery.payload);
    const result = await postWebhook({
      url: delivery.url,
      body,
      headers: {
        [signatureHeader]: signWebhook(delivery.secret, body, Math.floor(Date.now() / 1000)),
        'Headway-Delivery': delivery.delivery_id,
        'Headway-Condition': delivery.condition,
      },
      timeoutMs: policy.timeoutMs,
      maxResponseBytes: policy.maxResponseBytes,
      allowHosts: policy.allowHosts,
    });
    const attempts = delivery.attempts + 1;
    const attempt: DeliveryAttempt = {
      at: new Date().toISOString(),
      status: result.status,
      error: result.error,
      durationMs: result.durationMs,
      response: result.responseBody,
    };
    const outcome = result.ok ? 'delivered' : attempts >= policy.maxAttempts ? 'dead' : 'pending';
    if (outcome === 'delivered') report.delivered += 1;
    else if (outcome === 'dead') report.dead += 1;
    else report.failed += 1;
    // Times from the database's clock, as the due query reads them.
    const retryMs = retryDelayMs(attempts, policy);
    await db
      .updateTable('webhook_deliveries')
      .set({
        attempts,
        attempt_log: sql`attempt_log || ${JSON.stringify([attempt])}::jsonb`,
        ...(outcome === 'pending'
          ? { next_attempt_at: sql<Date>`now() + ${retryMs} * interval '1 millisecond'` }
          : { status: outcome }),
        ...(outcome === 'delivered' ? { delivered_at: sql<Date>`now()` } : {}),
      })
      .where('delivery_id', '=', delivery.delivery_id)
      // Only the attempt this round read: never over a later one's record.
      .where('status', '=', 'pending')
      .where('attempts', '=', delivery.attempts)
      .execute();
  };
  // Up to `sendConcurrency` at once; every request ends (each is bounded) before this returns.
  const queue = [...due];
  const failures: unknown[] = [];
  const worker = async (): Promise<void> => {
    for (let next = queue.shift(); next && !signal?.aborted; next = queue.shift()) {
      await send(next).catch((error: unknown) => failures.push(error));
    }
  };
  await Promise.all(Array.from({ length: Math.min(sendConcurrency, due.length) }, worker));
  if (failures.length > 0) throw failures[0];
  const next = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhooks as w', 'w.webhook_id', 'd.webhook_id')
    .select(
      sql<number | string | null>`extract(epoch from (min(d.next_attempt_at) - now())) * 1000`.as(
        'ms',
      ),
    )
    .where('d.status', '=', 'pending')
    .where('w.removed_at', 'is', null)
    .executeTakeFirst();
  report.nextDueInMs = next?.ms == null ? null : Math.max(0, Number(next.ms));
  return report;
}

/** A delivery as `GET /v1/webhooks/:id/deliveries` lists it. */
export interface Delivery {
  id: string;
  webhookId: string;
  jobId: string;
  condition: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  attemptLog: DeliveryAttempt[];
  createdAt: string;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
  payload: WebhookPayload;
}

/** A subscription's deliveries, newest first, at most `limit`; only those in `status` if given. */
export async function listDeliveries(
  db: Kysely<Database>,
  webhookId: string,
  options: { limit?: number; status?: Delivery['status'] } = {},
): Promise<Delivery[]> {
  const rows = await db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('webhook_id', '=', webhookId)
    .$if(options.status !== undefined, (query) => query.where('status', '=', options.status!))
    .orderBy('created_at', 'desc')
    .orderBy('event_position', 'desc')
    .orderBy('delivery_id')
    .limit(options.limit ?? 100)
    .execute();
  const iso = (value: Date | string | null) =>
    value === null ? null : new Date(value).toISOString();
  return rows.map((row) => ({
    id: row.delivery_id,
    webhookId: row.webhook_id,
    jobId: row.job_id,
    condition: row.condition,
    status: row.status,
    attempts: row.attempts,
    attemptLog: row.attempt_log as DeliveryAttempt[],
    createdAt: iso(row.created_at)!,
    nextAttemptAt: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    deliveredAt: iso(row.delivered_at),
    payload: row.payload as WebhookPayload,
  }));
}

/** Attempts a delivery's log keeps: the latest, when redeliveries add more. */
const keptAttempts = 64;

/**
 * Sends a dead-lettered (or pending) delivery again from now, with a fresh set of attempts;
 * its earlier attempts stay in its log. Returns false when the subscription has no such
 * delivery, or it was delivered already.
 */
export async function redeliver(
  db: Kysely<Database>,
  webhookId: string,
  deliveryId: string,
): Promise<boolean> {
  const result = await db
    .updateTable('webhook_deliveries')
    .set({
      status: sql<'dead'>`'pending'`,
      attempts: 0,
      next_attempt_at: sql<Date>`now()`,
      // Bounded: only the latest attempts of a delivery sent again and again are kept.
      attempt_log: sql`jsonb_path_query_array(attempt_log, ${`$[last - ${keptAttempts - 1} to last]`}::jsonpath)`,
    })
    .where('webhook_id', '=', webhookId)
    .where('delivery_id', '=', deliveryId)
    .where('status', '!=', 'delivered')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Enqueues a test delivery to one subscription, sent like any other: the way to check a
 * receiver and its signature check. Returns its id.
 */
export async function enqueueTestDelivery(
  db: Kysely<Database>,
  webhookId: string,
  publicUrl: string | null,
): Promise<string> {
  const id = randomUUID();
  const payload = payloadOf(
    id,
    webhookId,
    'test',
    { streamId: 'test', occurredAt: new Date() },
    null,
    publicUrl,
  );
  await db
    .insertInto('webhook_deliveries')
    .values({
      delivery_id: id,
      webhook_id: webhookId,
      job_id: 'test',
      condition: 'test',
      event_position: '0',
      payload: JSON.stringify({ ...payload, summary: 'A test delivery from Headway.' }),
    })
    .execute();
  return id;
}
