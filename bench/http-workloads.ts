import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { jobEvents, jobIds } from './generate-events.ts';
import { percentile, perSecond } from './stats.ts';

/** httpAppend and httpStatus, measured together. */
export interface HttpFigures {
  appendPerSec: number;
  events: number;
  statusP50Ms: number;
  statusP99Ms: number;
  statusQueries: number;
}

/**
 * httpAppend: `clients` concurrent clients, each posting `batches` batches of 100 events of
 * its own job to `POST /v1/jobs/:id/events` over keep-alive HTTP on loopback, against a
 * server with its projection runner. httpStatus: `GET /v1/jobs/:id` of one of those jobs,
 * one request after another, while the appends run.
 */
export async function httpAppendAndStatus(
  ledger: Ledger,
  options: { clients: number; batches: number },
): Promise<HttpFigures> {
  const server = await createServer({ ledger });
  const runners = ledger.runProjections();
  try {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    const jobs = jobIds('http', options.clients).map((jobId) => ({
      jobId,
      events: jobEvents(jobId, options.batches * 100),
    }));
    const post = async (jobId: string, events: unknown[]) => {
      const response = await fetch(`${base}/v1/jobs/${jobId}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ events }),
      });
      if (response.status !== 200) {
        throw new Error(`httpAppend: HTTP ${response.status}: ${await response.text()}`);
      }
      await response.arrayBuffer();
    };
    // Each job's first batch (job.started) before the clock starts, so status has a job.
    for (const job of jobs) await post(job.jobId, job.events.slice(0, 100));
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
        for (let batch = 1; batch < options.batches; batch += 1) {
          await post(job.jobId, job.events.slice(batch * 100, (batch + 1) * 100));
        }
      }),
    );
    const elapsed = performance.now() - started;
    appending = false;
    await poller;
    latencies.sort((a, b) => a - b);
    const events = options.clients * (options.batches - 1) * 100;
    return {
      appendPerSec: perSecond(events, elapsed),
      events,
      statusP50Ms: percentile(latencies, 0.5),
      statusP99Ms: percentile(latencies, 0.99),
      statusQueries: latencies.length,
    };
  } finally {
    await server.close();
    await runners.stop();
  }
}
