import { reconnectDelayMs, sleep } from '../backoff.ts';
import type { LedgerStore, RunnerLock } from '../store/ledger-store.ts';
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

  private async runForever(): Promise<void> {
    const { signal } = this.stopping;
    const pollMs = this.options.pollIntervalMs ?? 1_000;
    const lockRetryMs = this.options.lockRetryMs ?? 2_000;
    let failures = 0;
    while (!signal.aborted) {
      const lock = await this.tryLock();
      if (!lock) {
        await sleep(lockRetryMs * (0.5 + Math.random() / 2), signal);
        continue;
      }
      const woken = { flag: false, wake: () => undefined as void };
      const subscription = this.context.store.wakeUps.subscribe(() => {
        woken.flag = true;
        woken.wake();
      });
      try {
        const holding = AbortSignal.any([signal, lock.lost]);
        while (!holding.aborted) {
          woken.flag = false;
          const round = await this.deliverOnce(holding);
          failures = 0;
          // Straight on while there is more due; else until an append, the next due, or the poll.
          if (round.delivered + round.failed + round.dead > 0 || woken.flag) continue;
          const untilDue = round.nextDueAt === null ? pollMs : round.nextDueAt - Date.now();
          await new Promise<void>((resolve) => {
            const waiting = new AbortController();
            woken.wake = () => waiting.abort();
            void sleep(
              Math.max(0, Math.min(pollMs, untilDue)),
              AbortSignal.any([holding, waiting.signal]),
            ).then(resolve);
          });
          woken.wake = () => undefined;
        }
      } catch (error) {
        if (signal.aborted) break;
        this.options.onError?.(error);
        await sleep(reconnectDelayMs(failures++), signal);
      } finally {
        subscription.unsubscribe();
        await lock.release();
      }
    }
  }

  private async tryLock(): Promise<RunnerLock | null> {
    try {
      return await this.context.store.tryLock(webhooksLockName);
    } catch (error) {
      this.options.onError?.(error);
      return null;
    }
  }
}
