import { sleep } from '../backoff.ts';
import type { LedgerStore } from '../store/ledger-store.ts';
import { holdLockForever } from '../store/lock-holder.ts';
import {
  defaultDeliveryPolicy,
  enqueueDeliveries,
  sendDueDeliveries,
} from './webhook-deliveries.ts';
import type { DeliveryPolicy, WebhookDeliveryContext } from './webhook-deliveries.ts';

// One process at a time (the holder of the `webhooks` lock) enqueues deliveries from the log
// and sends them; another takes over when it dies, and sends what was pending.

/** The lock the webhook deliverer holds while it runs. */
export const webhooksLockName = 'webhooks';

/** How the deliverer runs. */
export interface WebhookDelivererOptions extends Partial<DeliveryPolicy> {
  /** The server's own URL, for links to job pages in payloads; none when absent. */
  publicUrl?: string;
  /** Longest wait between looks at the log and the due deliveries (default 1,000 ms). */
  pollIntervalMs?: number;
  /** Longest wait between attempts to take the lock another process holds (default 2,000 ms). */
  lockRetryMs?: number;
  /** Errors the deliverer recovered from; default: ignored. */
  onError?: (error: unknown) => void;
}

/**
 * Delivers webhooks from the log until `stop`: waits for the lock, then enqueues what new
 * events call for and sends what is due, waking on appends.
 *
 * @example
 * const deliverer = ledger.deliverWebhooks({ allowHosts: ['hooks.internal'] });
 * await deliverer.stop();
 */
export class WebhookDeliverer {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly policy: DeliveryPolicy;

  constructor(
    private readonly context: WebhookDeliveryContext & {
      store: Pick<LedgerStore, 'tryLock' | 'wakeUps'>;
    },
    private readonly options: WebhookDelivererOptions = {},
  ) {
    const policy = { ...defaultDeliveryPolicy };
    for (const key of Object.keys(policy) as (keyof DeliveryPolicy)[]) {
      if (options[key] !== undefined) Object.assign(policy, { [key]: options[key] });
    }
    this.policy = policy;
  }

  /** Runs in the background until `stop`. */
  start(): void {
    this.loop ??= this.runForever();
  }

  /** Stops after the request in flight, and releases the lock. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  /** Enqueues what the log calls for, then sends what is due, once. */
  async deliverOnce(signal?: AbortSignal) {
    const enqueued = await enqueueDeliveries(this.context, this.options.publicUrl ?? null);
    const sent = await sendDueDeliveries(this.context.db, this.policy, signal);
    return { enqueued, ...sent };
  }

  private runForever(): Promise<void> {
    const { store } = this.context;
    const pollMs = this.options.pollIntervalMs ?? 1_000;
    const options = {
      tryLock: () => store.tryLock(webhooksLockName),
      lockRetryMs: this.options.lockRetryMs ?? 2_000,
      signal: this.stopping.signal,
      ...(this.options.onError ? { onError: this.options.onError } : {}),
    };
    return holdLockForever(options, async ({ signal: holding, recovered }) => {
      // An append wakes the loop early: it may call for deliveries. One made during a round
      // has aborted `waiting` already, so the wait after the round ends at once.
      let waiting = new AbortController();
      const subscription = store.wakeUps.subscribe(() => waiting.abort());
      try {
        while (!holding.aborted) {
          waiting = new AbortController();
          const round = await this.deliverOnce(holding);
          recovered();
          // Straight on while there is more due; else until an append, the next due, or the poll.
          if (round.delivered + round.failed + round.dead > 0) continue;
          const wait = Math.min(pollMs, round.nextDueInMs ?? pollMs);
          await sleep(wait, AbortSignal.any([holding, waiting.signal]));
        }
      } finally {
        subscription.unsubscribe();
      }
    });
  }
}
