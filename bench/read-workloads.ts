import { performance } from 'node:perf_hooks';
import { fold } from '../projections/projection.ts';
import { jobProgress } from '../projections/job-progress.ts';
import { perStream } from '../projections/per-stream.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { Ledger } from '../src/ledger.ts';
import { jobEvents } from './generate-events.ts';
import { median, perSecond } from './stats.ts';

/**
 * Appends `eventCount` events to one job in calls of at most 10,000 (the append limit),
 * calling `also` with each chunk so a raw copy can be written alongside. Not timed.
 */
export async function seedJob(
  ledger: Ledger,
  jobId: string,
  eventCount: number,
  also?: (events: ReturnType<typeof jobEvents>, firstVersion: number) => Promise<void>,
): Promise<void> {
  const events = jobEvents(jobId, eventCount);
  let version = 0;
  for (let start = 0; start < events.length; start += 10_000) {
    const chunk = events.slice(start, start + 10_000);
    const result = await ledger.append(jobId, chunk, { expectedVersion: version });
    if (also) await also(chunk, version + 1);
    version = result.nextExpectedVersion;
  }
}

/** Reads every event of some jobs into memory, in log order. */
export async function loadJobs(
  ledger: Ledger,
  jobIds: readonly string[],
): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  for await (const page of ledger.readAllBatches({ streamIds: jobIds }))
    events.push(...page.events);
  return events;
}

/**
 * fold: the progress projection over events already in memory, repeated for at least
 * `minMs` after one warm-up pass; events per second.
 */
export function foldInMemory(events: readonly RecordedEvent[], minMs: number): number {
  const projection = perStream(jobProgress);
  fold(projection, events);
  let passes = 0;
  const started = performance.now();
  let elapsed = 0;
  do {
    fold(projection, events);
    passes += 1;
    elapsed = performance.now() - started;
  } while (elapsed < minMs);
  return perSecond(passes * events.length, elapsed);
}

/**
 * jobSnapshot: the median time of `ledger.project(jobId, jobProgress)` after a warm-up, on
 * a ledger that keeps no folds, so each run folds the whole job.
 */
export async function jobSnapshot(ledger: Ledger, jobId: string, runs: number): Promise<number> {
  await ledger.project(jobId, jobProgress);
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    await ledger.project(jobId, jobProgress);
    times.push(performance.now() - started);
  }
  return median(times);
}
