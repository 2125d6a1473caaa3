/**
 * A worker thread that times `select 1` on a connection of its own, one every 10 ms, until
 * the parent posts 'stop' (or 10 minutes pass), then posts its latencies. Beside a timed
 * request, it shows the part of the wait that is the database's round trip on a machine
 * under that load, apart from the server's own event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

const intervalMs = 10;
const longestMs = 600_000;

// Each query is bounded, so a lost database ends the probe with an error, never a hang.
const client = new pg.Client({
  connectionString: (workerData as { url: string }).url,
  query_timeout: 10_000,
});
await client.connect();
let stopped = false;
parentPort!.once('message', () => (stopped = true));
const latencies: number[] = [];
const started = performance.now();
try {
  await client.query('select 1');
  parentPort!.postMessage({ ready: true });
  while (!stopped && performance.now() - started < longestMs) {
    const before = performance.now();
    await client.query('select 1');
    latencies.push(performance.now() - before);
    await sleep(intervalMs);
  }
} finally {
  await client.end();
}
parentPort!.postMessage({ latencies });
