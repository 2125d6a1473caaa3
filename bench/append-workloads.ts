import { performance } from 'node:perf_hooks';
import type { EventInput } from '../schema/events.ts';
import { CoalescingAppender } from '../src/append/coalescing-appender.ts';
import type { Ledger } from '../src/ledger.ts';
import { jobEvents, jobIds } from './generate-events.ts';
import { perSecond, sequentialLatency } from './stats.ts';
import type { LatencyFigures } from './stats.ts';

/** A job and its whole history, generated before the clock starts. */
export interface JobBatch {
  jobId: string;
  events: EventInput[];
}

/** `jobs` generated jobs named `<prefix>-0001`…, each with `eventsPerJob` events. */
export function jobBatches(prefix: string, jobs: number, eventsPerJob: number): JobBatch[] {
  return jobIds(prefix, jobs).map((jobId) => ({ jobId, events: jobEvents(jobId, eventsPerJob) }));
}

/** batchAppend: one `append` call per job, sequentially; events per second. */
export async function batchAppend(ledger: Ledger, jobs: readonly JobBatch[]): Promise<number> {
  let events = 0;
  const started = performance.now();
  for (const job of jobs) {
    await ledger.append(job.jobId, job.events, { expectedVersion: 'no_stream' });
    events += job.events.length;
  }
  return perSecond(events, performance.now() - started);
}

/**
 * singleAppend: one event per call to one job, each call naming the version it expects,
 * as a producer recording items one by one does.
 */
export async function singleAppend(ledger: Ledger, job: JobBatch): Promise<LatencyFigures> {
  let version = 0;
  return sequentialLatency(job.events.length, async (index) => {
    const result = await ledger.append(job.jobId, [job.events[index]!], {
      expectedVersion: version,
    });
    version = result.nextExpectedVersion;
  });
}

/**
 * concurrentAppend: every producer appends its job's events one at a time, all at once,
 * through one coalescing appender (group commit); events per second over all producers.
 */
export async function concurrentAppend(
  ledger: Ledger,
  producers: readonly JobBatch[],
): Promise<number> {
  const appender = new CoalescingAppender(ledger);
  const started = performance.now();
  try {
    await Promise.all(
      producers.map(async (job) => {
        let version = 0;
        for (const event of job.events) {
          const result = await appender.append(job.jobId, [event], { expectedVersion: version });
          version = result.nextExpectedVersion;
        }
      }),
    );
  } finally {
    await appender.close();
  }
  const events = producers.reduce((sum, job) => sum + job.events.length, 0);
  return perSecond(events, performance.now() - started);
}
