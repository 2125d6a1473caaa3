// Web timers only: the client runs in browsers too.

/** Backoff of reconnects and retries: 100 ms doubling to 5 s, with jitter. */
export function reconnectDelayMs(attempt: number): number {
  const ceiling = Math.min(5_000, 100 * 2 ** Math.min(attempt, 10));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Waits `ms`, or until `signal` aborts if that comes first; never throws. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    // Ending early is all an abort means here.
    const end = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', end);
      resolve();
    };
    const timer = setTimeout(end, ms);
    signal?.addEventListener('abort', end, { once: true });
  });
}
