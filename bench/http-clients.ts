/**
 * The clients of httpAppend and httpStatus, in a process of their own as other services
 * would be: BENCH_HTTP_URL, BENCH_HTTP_CLIENTS and BENCH_HTTP_BATCHES say where and how
 * much. Prints one JSON line of `HttpClientsResult`.
 */
import { performance } from 'node:perf_hooks';
import { jobEvents, jobIds } from './generate-events.ts';
import { percentile, perSecond } from './stats.ts';

/** What the clients measured. */
export interface HttpClientsResult {
  appendPerSec: number;
  events: number;
  statusP50Ms: number;
  statusP99Ms: number;
  statusQueries: number;
}

const base = process.env.BENCH_HTTP_URL!;
const clients = Number(process.env.BENCH_HTTP_CLIENTS);
const batches = Number(process.env.BENCH_HTTP_BATCHES);

const jobs = jobIds('http', clients).map((jobId) => ({
  jobId,
  bodies: Array.from({ length: batches }, (_, batch) =>
    JSON.stringify({
      events: jobEvents(jobId, batches * 100).slice(batch * 100, (batch + 1) * 100),
    }),
  ),
}));

async function post(jobId: string, body: string): Promise<void> {
  const response = await fetch(`${base}/v1/jobs/${jobId}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`httpAppend: HTTP ${response.status}: ${text}`);
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
await Promise.all(
  jobs.map(async (job) => {
    for (const body of job.bodies.slice(1)) await post(job.jobId, body);
  }),
);
const elapsed = performance.now() - started;
appending = false;
await poller;
latencies.sort((a, b) => a - b);
const events = clients * (batches - 1) * 100;
const result: HttpClientsResult = {
  appendPerSec: perSecond(events, elapsed),
  events,
  statusP50Ms: percentile(latencies, 0.5),
  statusP99Ms: percentile(latencies, 0.99),
  statusQueries: latencies.length,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
