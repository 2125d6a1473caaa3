/**
 * The producers of the topology benchmark, in a process of their own as other services
 * would be: BENCH_TOPO_PRODUCERS clients (`createClient`), each appending batches of
 * BENCH_TOPO_BATCH events of its own job to BENCH_TOPO_URL, one batch at a time (append,
 * then flush), from BENCH_TOPO_START_AT (epoch ms) for BENCH_TOPO_WARMUP_MS of warm-up and
 * BENCH_TOPO_DURATION_MS of measurement. Job ids are `<BENCH_TOPO_PREFIX>-p<n>` (then
 * `-j<k>` when a job's history runs out). Prints one JSON line of `ProducersResult`.
 */
import { createClient } from '../src/client/index.ts';
import type { EventInput } from '../schema/events.ts';
import { performance } from 'node:perf_hooks';
import { jobHistory } from './generate-events.ts';
import { percentile } from './stats.ts';

/** What the producers measured in the window. */
export interface ProducersResult {
  /** Events stored (their batch answered) inside the window. */
  events: number;
  batches: number;
  windowMs: number;
  eventsPerSec: number;
  /** Batch round trips inside the window (client to answer), ms. */
  batchP50Ms: number;
  batchP99Ms: number;
  /** Failed attempts the client retried (5xx, network), over the whole run. */
  retries: number;
  /** How late this process started against BENCH_TOPO_START_AT (eats into the warm-up). */
  lateMs: number;
  /** This process's CPU time inside the window. */
  cpuMs: number;
}

const url = process.env.BENCH_TOPO_URL!;
const producers = Number(process.env.BENCH_TOPO_PRODUCERS);
const batchSize = Number(process.env.BENCH_TOPO_BATCH);
const startAt = Number(process.env.BENCH_TOPO_START_AT);
const warmupMs = Number(process.env.BENCH_TOPO_WARMUP_MS);
const durationMs = Number(process.env.BENCH_TOPO_DURATION_MS);
const prefix = process.env.BENCH_TOPO_PREFIX!;

/** Events in one job's history; a producer that reaches the end starts another job. */
const jobLength = 1_000_000;

const windowStart = startAt + warmupMs;
const windowEnd = windowStart + durationMs;
const lateMs = Math.max(0, Date.now() - startAt);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));

let retries = 0;
let events = 0;
let batches = 0;
const latencies: number[] = [];
let cpuAtStart: NodeJS.CpuUsage | null = null;
let cpuAtEnd: NodeJS.CpuUsage | null = null;
const startTimer = setTimeout(
  () => (cpuAtStart = process.cpuUsage()),
  Math.max(0, windowStart - Date.now()),
);
const endTimer = setTimeout(
  () => (cpuAtEnd = process.cpuUsage()),
  Math.max(0, windowEnd - Date.now()),
);

async function produce(index: number): Promise<void> {
  const client = createClient({
    url,
    flushEvents: batchSize,
    batchEvents: batchSize,
    flushIntervalMs: 60_000,
    maxBufferedEvents: batchSize * 2,
    giveUpAfterMs: 30_000,
    requestTimeoutMs: 30_000,
    onError: (_error, context) => {
      if (context.retrying) retries += 1;
    },
  });
  try {
    let job = 0;
    let jobId = `${prefix}-p${index}`;
    let history = jobHistory(jobId, jobLength);
    // Bounded by the clock: no batch starts after the window.
    while (Date.now() < windowEnd) {
      const batch: EventInput[] = [];
      while (batch.length < batchSize) {
        const next = history.next();
        if (next.done) {
          if (batch.length > 0) break;
          job += 1;
          jobId = `${prefix}-p${index}-j${job}`;
          history = jobHistory(jobId, jobLength);
          continue;
        }
        batch.push(next.value);
      }
      const before = Date.now();
      const clock = performance.now();
      await client.append(jobId, batch);
      await client.flush();
      const took = performance.now() - clock;
      const after = Date.now();
      if (before >= windowStart && after <= windowEnd) latencies.push(took);
      if (after >= windowStart && after <= windowEnd) {
        events += batch.length;
        batches += 1;
      }
    }
  } finally {
    await client.close();
  }
}

await Promise.all(Array.from({ length: producers }, (_, index) => produce(index)));
clearTimeout(startTimer);
clearTimeout(endTimer);
latencies.sort((a, b) => a - b);
const started = cpuAtStart as NodeJS.CpuUsage | null;
const ended = cpuAtEnd as NodeJS.CpuUsage | null;
const result: ProducersResult = {
  events,
  batches,
  windowMs: durationMs,
  eventsPerSec: (events * 1000) / durationMs,
  batchP50Ms: percentile(latencies, 0.5),
  batchP99Ms: percentile(latencies, 0.99),
  retries,
  lateMs,
  cpuMs:
    started && ended
      ? (ended.user - started.user + ended.system - started.system) / 1000
      : Number.NaN,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
// Should anything keep this process alive, it still ends (the result is written first).
setTimeout(() => process.exit(0), 5_000).unref();
