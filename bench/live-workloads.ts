import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Subscription } from 'rxjs';
import type { Ledger } from '../src/ledger.ts';
import { jobEvents } from './generate-events.ts';
import { percentile, perSecond } from './stats.ts';

/** Milliseconds from commit to delivery. */
export interface LatencyPercentiles {
  p50Ms: number;
  p99Ms: number;
  samples: number;
}

/**
 * liveLatency: `subscribers` live subscriptions while one producer appends at a steady
 * `eventsPerSec` in appends every 10 ms. Each sample is the time from the append's commit
 * being acknowledged to one subscriber receiving its last event; an event delivered before
 * the acknowledgement counts as 0 ms.
 */
export async function liveLatency(
  writer: Ledger,
  reader: Ledger,
  options: { eventsPerSec: number; subscribers: number; durationMs: number },
): Promise<LatencyPercentiles> {
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((options.eventsPerSec * tickMs) / 1_000));
  const committedAt = new Map<string, number>();
  const deliveredAt: { eventId: string; at: number }[] = [];
  const after = await reader.liveCursor();
  const subscriptions: Subscription[] = [];
  // A subscription's error is kept and reported; unhandled, rxjs would throw it out of band.
  let failed: unknown;
  let expected = 0;
  try {
    for (let index = 0; index < options.subscribers; index += 1) {
      subscriptions.push(
        reader.subscribe({ after, streamIds: ['live-0001'], pollIntervalMs: 1_000 }).subscribe({
          next: (event) => deliveredAt.push({ eventId: event.eventId, at: performance.now() }),
          error: (error: unknown) => (failed ??= error),
        }),
      );
    }
    // Give every subscription time to open its LISTEN connection and first read.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const events = jobEvents(
      'live-0001',
      Math.ceil((options.durationMs / tickMs) * perTick) + perTick,
    );
    const started = performance.now();
    let sent = 0;
    const appends: Promise<void>[] = [];
    for (let tick = 0; performance.now() - started < options.durationMs; tick += 1) {
      const batch = events.slice(sent, sent + perTick).map((event) => ({
        ...event,
        eventId: crypto.randomUUID(),
      }));
      sent += batch.length;
      const append = writer.append('live-0001', batch).then(() => {
        committedAt.set(batch.at(-1)!.eventId, performance.now());
      });
      appends.push(append);
      // The first batch starts the job, so no later one may reach the database before it.
      if (tick === 0) await append;
      const next = started + (tick + 1) * tickMs;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    }
    await Promise.all(appends);
    expected = sent * options.subscribers;
    const deadline = performance.now() + 10_000;
    while (deliveredAt.length < expected && failed === undefined && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    // Also when an append fails: the ledger closes next, under the subscriptions' reads.
    for (const subscription of subscriptions) subscription.unsubscribe();
  }
  if (failed !== undefined) {
    throw failed instanceof Error ? failed : new Error(`liveLatency: ${JSON.stringify(failed)}`);
  }
  if (deliveredAt.length < expected) {
    throw new Error(`liveLatency: ${deliveredAt.length} of ${expected} deliveries arrived`);
  }
  const latencies = deliveredAt
    .filter(({ eventId }) => committedAt.has(eventId))
    .map(({ eventId, at }) => Math.max(0, at - committedAt.get(eventId)!))
    .sort((a, b) => a - b);
  return {
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    samples: latencies.length,
  };
}

/** rebuild: a full rebuild of every persisted projection over the log as it stands. */
export async function rebuildAll(
  ledger: Ledger,
): Promise<{ eventsPerSec: number; events: number }> {
  // The first catch-up builds generation 1; the rebuild then times a second full pass.
  await ledger.catchUpProjections();
  const started = performance.now();
  const generations = await ledger.rebuild();
  const elapsed = performance.now() - started;
  const events = generations[0]?.events ?? 0;
  return { eventsPerSec: perSecond(events, elapsed), events };
}

/**
 * statusQuery: `ledger.status` of a job, `queries` times in a row, while a producer
 * appends to that job at a steady `eventsPerSec` (20 events every 10 ms at 2,000/s) and
 * a runner keeps the projections current. Each status query is followed by the baseline,
 * one primary-key read of the job's stream row on a raw connection, under the same load.
 */
export async function statusUnderLoad(
  ledger: Ledger,
  writer: Ledger,
  raw: pg.Client,
  options: { queries: number; eventsPerSec: number },
): Promise<
  LatencyPercentiles & { baseline: LatencyPercentiles; appendedDuring: number; jobEvents: number }
> {
  const jobId = 'status-0001';
  const events = jobEvents(jobId, 200_000);
  await writer.append(jobId, events.slice(0, 10_000));
  await ledger.catchUpProjections();
  const runner = ledger.runProjections();
  let appending = true;
  let appended = 0;
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((options.eventsPerSec * tickMs) / 1_000));
  const producer = (async () => {
    const started = performance.now();
    for (let tick = 0, start = 10_000; appending && start < events.length; tick += 1) {
      await writer.append(jobId, events.slice(start, start + perTick));
      start += perTick;
      appended += perTick;
      const next = started + (tick + 1) * tickMs;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
    }
  })();
  const latencies: number[] = [];
  const baseline: number[] = [];
  const keyRead = { text: 'select version from streams where stream_id = $1', values: [jobId] };
  let lastVersion = 0;
  try {
    await ledger.status(jobId);
    for (let index = 0; index < options.queries; index += 1) {
      let before = performance.now();
      const view = await ledger.status(jobId);
      latencies.push(performance.now() - before);
      if (!view) throw new Error('statusQuery: the job vanished');
      lastVersion = view.progress.version;
      before = performance.now();
      await raw.query(keyRead);
      baseline.push(performance.now() - before);
    }
  } finally {
    appending = false;
    await producer;
    await runner.stop();
  }
  const percentiles = (values: number[]): LatencyPercentiles => {
    values.sort((a, b) => a - b);
    return {
      p50Ms: percentile(values, 0.5),
      p99Ms: percentile(values, 0.99),
      samples: values.length,
    };
  };
  return {
    ...percentiles(latencies),
    baseline: percentiles(baseline),
    appendedDuring: appended,
    jobEvents: lastVersion,
  };
}
