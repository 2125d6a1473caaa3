import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReplayWorkerResult } from './replay-worker.ts';

const workerPath = fileURLToPath(new URL('./replay-worker.ts', import.meta.url));

/**
 * The replay's live state for 1M events is ~60 MB, but V8 lets an uncapped heap fill with
 * garbage to several times that before it collects; a cap (same speed, measured) shows
 * the memory a replay needs rather than what V8 would take on a 24 GB machine.
 */
export const replayHeapCapMb = 256;

/** Runs the replay workload in a child process and returns what it reports; `signal` kills it. */
export function replayInChild(
  databaseUrl: string,
  signal: AbortSignal,
): Promise<ReplayWorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [`--max-old-space-size=${replayHeapCapMb}`, '--import', 'tsx', workerPath],
      {
        // The URL goes by environment, not argv, so a password never shows in `ps`.
        env: { ...process.env, BENCH_DATABASE_URL: databaseUrl },
        stdio: ['ignore', 'pipe', 'inherit'],
        signal,
      },
    );
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = output.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`replay worker exited with ${signal ?? code}: ${line}`));
        return;
      }
      try {
        resolve(JSON.parse(line) as ReplayWorkerResult);
      } catch {
        reject(new Error(`replay worker printed no result: ${JSON.stringify(output)}`));
      }
    });
  });
}
