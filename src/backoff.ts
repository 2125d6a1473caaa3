/** Backoff of reconnects and retries: 100 ms doubling to 5 s, with jitter. */
export function reconnectDelayMs(attempt: number): number {
  const ceiling = Math.min(5_000, 100 * 2 ** Math.min(attempt, 10));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}
