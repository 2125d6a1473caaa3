import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { EventInput } from '../schema/events.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import type { WebhookPayload } from '../src/webhooks/webhook-deliveries.ts';
import type { ScratchDatabase } from './scratch-database.ts';
import { median, percentile } from './stats.ts';

// `npm run bench -- --alerts`: what the condition watcher costs with many running jobs, and
// how long a condition takes to reach a webhook receiver.

/** What `--alerts` measures. */
export interface AlertBenchResult {
  date: string;
  watcher: {
    runningJobs: number;
    /** A sweep over the running jobs when none holds a condition: median and worst. */
    quietSweepMs: { p50: number; max: number };
    /** A sweep when `stalledJobs` of them are stalled and raised (judged, nothing new). */
    stalledJobs: number;
    stalledSweepMs: { p50: number; max: number; judged: number };
    /** Raw SQL: reading every running job's stored state once (the cost without narrowing). */
    rawReadAllMs: number;
  };
  delivery: {
    notifications: number;
    intervalMs: number;
    /** From the condition's record in the log to the receiver. */
    recordToReceiverMs: { p50: number; p99: number };
    /** From the moment the condition began to hold (its threshold passed) to the receiver. */
    onsetToReceiverMs: { p50: number; p99: number };
  };
}

const sweeps = 7;

/** Runs both measures on the scratch database, in schemas of their own. */
export async function runAlertWorkloads(
  database: ScratchDatabase,
  log: (line: string) => void,
  options: { runningJobs: number; notifications: number },
): Promise<AlertBenchResult> {
  const watcher = await watcherCost(database.url, options.runningJobs, log);
  const delivery = await deliveryLatency(database.url, options.notifications, log);
  return { date: new Date().toISOString(), watcher, delivery };
}

async function watcherCost(url: string, runningJobs: number, log: (line: string) => void) {
  const ledger = await openLedger({ databaseUrl: url, schema: 'bench_alerts_watcher' });
  try {
    const now = Date.now();
    log(`watcher: seeding ${runningJobs} running jobs`);
    const jobIds = Array.from({ length: runningJobs }, (_, index) => `running-${index}`);
    for (let start = 0; start < jobIds.length; start += 500) {
      await ledger.appendMany(
        jobIds.slice(start, start + 500).map((jobId) => ({
          streamId: jobId,
          events: startedJob(now, jobId),
        })),
      );
    }
    await ledger.catchUpProjections();
    const watcher = ledger.conditionWatcher();
    const quiet: number[] = [];
    for (let run = 0; run < sweeps; run += 1) {
      const report = await watcher.sweep(Date.now());
      if (report.judged !== 0) throw new Error(`expected no job to judge, judged ${report.judged}`);
      quiet.push(report.durationMs);
    }
    log(`watcher: quiet sweep p50 ${median(quiet).toFixed(1)} ms`);

    // A hundredth of them stalled: silent for an hour, past their 1-minute threshold.
    const stalledJobs = Math.max(1, Math.round(runningJobs / 100));
    const stalledIds = Array.from({ length: stalledJobs }, (_, index) => `stalled-${index}`);
    await ledger.appendMany(
      stalledIds.map((jobId) => ({
        streamId: jobId,
        events: startedJob(now - 3_600_000, jobId, 60_000),
      })),
    );
    await watcher.sweep(Date.now());
    await ledger.catchUpProjections();
    const stalled: number[] = [];
    let judged = 0;
    for (let run = 0; run < sweeps; run += 1) {
      const report = await watcher.sweep(Date.now());
      stalled.push(report.durationMs);
      judged = report.judged;
    }
    log(`watcher: sweep with ${stalledJobs} stalled p50 ${median(stalled).toFixed(1)} ms`);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    let rawReadAllMs = 0;
    try {
      const raws: number[] = [];
      for (let run = 0; run < sweeps; run += 1) {
        const started = performance.now();
        await client.query(
          `select key, value from bench_alerts_watcher.projection_states
            where projection = 'jobs' and part = '' and value -> 'progress' ->> 'status' = 'running'`,
        );
        raws.push(performance.now() - started);
      }
      rawReadAllMs = median(raws);
    } finally {
      await client.end();
    }
    return {
      runningJobs,
      quietSweepMs: { p50: median(quiet), max: Math.max(...quiet) },
      stalledJobs,
      stalledSweepMs: { p50: median(stalled), max: Math.max(...stalled), judged },
      rawReadAllMs,
    };
  } finally {
    await ledger.close();
  }
}

function startedJob(at: number, jobId: string, stallAfterMs = 3_600_000): EventInput[] {
  return [
    {
      type: 'job.started',
      occurredAt: new Date(at),
      data: { name: jobId, kind: 'bench', project: 'alerts', total: 100, stallAfterMs },
    },
    { type: 'item.completed', occurredAt: new Date(at), data: { itemId: 'a' } },
  ];
}

async function deliveryLatency(url: string, notifications: number, log: (line: string) => void) {
  const ledger: Ledger = await openLedger({ databaseUrl: url, schema: 'bench_alerts_delivery' });
  const received: { at: number; payload: WebhookPayload }[] = [];
  const receiver = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ at: Date.now(), payload: JSON.parse(body) as WebhookPayload });
      response.end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  const intervalMs = 5_000;
  const watcher = ledger.watchConditions({ intervalMs });
  const deliverer = ledger.deliverWebhooks({ allowHosts: ['127.0.0.1'] });
  try {
    await ledger.webhooks.add(
      { url: `http://127.0.0.1:${port}/hook`, conditions: ['stalled'] },
      { allowHosts: ['127.0.0.1'] },
    );
    // Jobs that stall one after another over about 10 s, each 1 s after its start or more.
    const started = Date.now();
    const onsets = new Map<string, number>();
    log(`delivery: ${notifications} jobs stalling over about 10 s, judged every ${intervalMs} ms`);
    for (let index = 0; index < notifications; index += 1) {
      const jobId = randomUUID();
      const stallAfterMs = 1_000 + Math.round((index * 10_000) / notifications);
      onsets.set(jobId, started + stallAfterMs);
      await ledger.append(jobId, [
        {
          type: 'job.started',
          occurredAt: new Date(started),
          data: { name: 'stalls', kind: 'bench', project: 'alerts', stallAfterMs },
        },
      ]);
    }
    const deadline = Date.now() + 60_000;
    while (received.length < notifications && Date.now() < deadline) await delay(100);
    if (received.length < notifications) {
      throw new Error(`received ${received.length} of ${notifications} within 60 s`);
    }
    const fromRecord = received.map(({ at, payload }) => at - Date.parse(payload.occurredAt));
    const fromOnset = received.map(({ at, payload }) => at - onsets.get(payload.job.id)!);
    const figures = (samples: number[]) => {
      const sorted = [...samples].sort((a, b) => a - b);
      return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
    };
    return {
      notifications,
      intervalMs,
      recordToReceiverMs: figures(fromRecord),
      onsetToReceiverMs: figures(fromOnset),
    };
  } finally {
    await Promise.all([watcher.stop(), deliverer.stop()]);
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    await ledger.close();
  }
}

/** The figures as a table. */
export function formatAlertTable(result: AlertBenchResult): string {
  const { watcher, delivery } = result;
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const rows = [
    ['figure', 'value'],
    [
      `watcher sweep, ${watcher.runningJobs.toLocaleString('en')} running jobs, none in a condition`,
      `p50 ${ms(watcher.quietSweepMs.p50)}, max ${ms(watcher.quietSweepMs.max)}`,
    ],
    [
      `watcher sweep, ${watcher.stalledJobs} of them stalled (judged ${watcher.stalledSweepMs.judged})`,
      `p50 ${ms(watcher.stalledSweepMs.p50)}, max ${ms(watcher.stalledSweepMs.max)}`,
    ],
    [
      'raw SQL: read every running job once (baseline)',
      `${ms(watcher.rawReadAllMs)} (sweep/raw ${(watcher.quietSweepMs.p50 / watcher.rawReadAllMs).toFixed(2)}×)`,
    ],
    [
      `delivery, record in the log → receiver (${delivery.notifications} stalls)`,
      `p50 ${ms(delivery.recordToReceiverMs.p50)}, p99 ${ms(delivery.recordToReceiverMs.p99)}`,
    ],
    [
      `delivery, condition onset → receiver (judged every ${delivery.intervalMs / 1000} s)`,
      `p50 ${ms(delivery.onsetToReceiverMs.p50)}, p99 ${ms(delivery.onsetToReceiverMs.p99)}`,
    ],
  ];
  const width = Math.max(...rows.map((row) => row[0]!.length));
  return rows.map(([figure, value]) => `${figure!.padEnd(width)}  ${value}`).join('\n');
}
