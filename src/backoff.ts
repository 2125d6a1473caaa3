import { setTimeout as delay } from 'node:timers/promises';

/** Backoff of reconnects and retries: 100 ms doubling to 5 s, with jitter. */
export function reconnectDelayMs(attempt: number): number {
  const ceiling = Math.min(5_000, 100 * 2 ** Math.min(attempt, 10));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Waits `ms`, or until `signal` aborts if that comes first; never throws. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  // An abort rejects the wait, and ending early is all an abort means here.
  await delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}
