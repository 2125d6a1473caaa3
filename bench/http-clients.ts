/**
 * The clients of httpAppend and httpStatus, in a process of their own as other services
 * would be. BENCH_HTTP_URL says where; BENCH_HTTP_CLIENTS how many clients, each posting
 * batches of 100 events of its own job. With BENCH_HTTP_INTERVAL_MS (steady), each client
 * posts one batch per interval for BENCH_HTTP_DURATION_MS; without it (saturated), each
 * posts BENCH_HTTP_BATCHES batches back to back. Prints one JSON line of `HttpClientsResult`.
 */
import { performance } from 'node:perf_hooks';
import { jobEvents, jobIds } from './generate-events.ts';
import { percentile, perSecond } from './stats.ts';

/** What the clients measured. */
export interface HttpClientsResult {
  /** Events acknowledged per second over the timed window (the achieved rate). */
  appendPerSec: number;
  events: number;
  statusP50Ms: number;
  statusP99Ms: number;
  statusQueries: number;
  /** Steady only: how late batches were sent behind their deadlines, p99 and max. */
  sendLagP99Ms?: number;
  sendLagMaxMs?: number;
  /** Steady only: p99 of the append requests' latency. */
  appendP99Ms?: number;
  /** CPU this process used over the timed window, in ms: the clients' share of the machine. */
  clientCpuMs: number;
}

const batchSize = 100;
const base = process.env.BENCH_HTTP_URL!;
const clients = Number(process.env.BENCH_HTTP_CLIENTS);
const intervalMs = process.env.BENCH_HTTP_INTERVAL_MS
  ? Number(process.env.BENCH_HTTP_INTERVAL_MS)
  : null;
const durationMs = Number(process.env.BENCH_HTTP_DURATION_MS ?? 0);
// The first batch of each job is posted before the clock starts.
const batches =
  intervalMs === null
    ? Number(process.env.BENCH_HTTP_BATCHES)
    : Math.ceil(durationMs / intervalMs) + 1;

const jobs = jobIds(intervalMs === null ? 'http' : 'http-steady', clients).map((jobId) => {
  const events = jobEvents(jobId, batches * batchSize);
  return {
    jobId,
    bodies: Array.from({ length: batches }, (_, batch) =>
      JSON.stringify({ events: events.slice(batch * batchSize, (batch + 1) * batchSize) }),
    ),
  };
});

async function post(jobId: string, body: string): Promise<void> {
  const response = await fetch(`${base}/v1/jobs/${jobId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`httpAppend: HTTP ${response.status}: ${text}`);
}

const sleepUntil = (at: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));

/** Every client's remaining batches back to back. */
async function saturate(): Promise<void> {
  await Promise.all(
    jobs.map(async (job) => {
      for (const body of job.bodies.slice(1)) await post(job.jobId, body);
    }),
  );
}

/**
 * Each client's remaining batches, the k-th due at `started + offset + k × interval`, the
 * clients' offsets spread over one interval. Deadlines are absolute, so a slow request
 * delays the next batch without shifting the ones after it.
 */
async function steady(
  started: number,
  interval: number,
): Promise<{ lags: number[]; appendLatencies: number[] }> {
  const lags: number[] = [];
  const appendLatencies: number[] = [];
  await Promise.all(
    jobs.map(async (job, index) => {
      const offset = (index * interval) / clients;
      for (const [batch, body] of job.bodies.slice(1).entries()) {
        const due = started + offset + batch * interval;
        await sleepUntil(due);
        const sent = performance.now();
        lags.push(sent - due);
        await post(job.jobId, body);
        appendLatencies.push(performance.now() - sent);
      }
    }),
  );
  return { lags, appendLatencies };
}

// Each job's first batch (with job.started) before the clock starts, so status has a job.
for (const job of jobs) await post(job.jobId, job.bodies[0]!);
let appending = true;
const latencies: number[] = [];
const poller = (async () => {
  const url = `${base}/v1/jobs/${jobs[0]!.jobId}`;
  while (appending) {
    const started = performance.now();
    const response = await fetch(url);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`httpStatus: HTTP ${response.status}`);
    latencies.push(performance.now() - started);
  }
})();
const started = performance.now();
const cpuBefore = process.cpuUsage();
const steadyFigures = intervalMs === null ? null : await steady(started, intervalMs);
if (intervalMs === null) await saturate();
// Steady: over the span the schedule covers, so finishing early cannot read above the target.
const elapsed = Math.max(performance.now() - started, (batches - 1) * (intervalMs ?? 0));
appending = false;
await poller;
const cpu = process.cpuUsage(cpuBefore);
latencies.sort((a, b) => a - b);
const events = clients * (batches - 1) * batchSize;
const result: HttpClientsResult = {
  appendPerSec: perSecond(events, elapsed),
  events,
  statusP50Ms: percentile(latencies, 0.5),
  statusP99Ms: percentile(latencies, 0.99),
  statusQueries: latencies.length,
  clientCpuMs: (cpu.user + cpu.system) / 1000,
};
if (steadyFigures) {
  const lags = steadyFigures.lags.sort((a, b) => a - b);
  const appendLatencies = steadyFigures.appendLatencies.sort((a, b) => a - b);
  result.sendLagP99Ms = percentile(lags, 0.99);
  result.sendLagMaxMs = lags.at(-1) ?? 0;
  result.appendP99Ms = percentile(appendLatencies, 0.99);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
