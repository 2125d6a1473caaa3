import { resolve } from 'node:path';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { isFinished } from '../../projections/job-status.ts';
import type { JobView } from '../../projections/job-rollup.ts';
import type { SummaryFigures } from '../../projections/job-summary.ts';
import { HeadwayError, InvalidInputError } from '../errors.ts';
import { expectedIssue } from '../validation.ts';
import { writeArchive } from './archive-file.ts';
import { recordArchive } from './archived-jobs.ts';
import {
  countPartitionEvents,
  defaultPartitionMonths,
  dropEventPartition,
  listEventPartitions,
  partitionJobs,
} from './event-partitions.ts';
import type { EventPartition } from './event-partitions.ts';
import { parseRetentionAge } from './retention-age.ts';

/** What `ledger.retention` takes. */
export interface RetentionOptions {
  /** How old a finished job must be: `'90d'`, `'12h'`, or milliseconds. */
  olderThan: string | number;
  /** Where archives go; `headway-archives` in the working folder by default. */
  archiveDir?: string;
  /** Plan only: write, record and drop nothing. */
  dryRun?: boolean;
  /** The clock the cutoff is taken from (epoch ms or a Date); now by default. */
  now?: number | Date;
}

/** What retention does, or did, with one month partition. */
export interface RetentionPartition {
  partition: string;
  /** `YYYY-MM`. */
  month: string;
  /** `archive`: exported, recorded and dropped (or would be, in a dry run); `drop`: empty, dropped; `keep`: held back. */
  action: 'archive' | 'drop' | 'keep';
  events: number;
  jobs: string[];
  /** Why the partition stays, when it does. */
  heldBack: string[];
  /** The archive written, once written. */
  archive?: { file: string; sha256: string; events: number; archiveId: string };
}

/** A retention plan, and after a run without `dryRun`, its result. */
export interface RetentionResult {
  dryRun: boolean;
  /** The clock and the cutoff (ISO 8601): jobs must have finished before the cutoff. */
  now: string;
  cutoff: string;
  olderThanMs: number;
  archiveDir: string;
  partitions: RetentionPartition[];
  /** Months whose events sit in the default partition, which retention never drops. */
  defaultPartition: { month: string; events: number }[];
  /** Totals of the partitions archived or dropped (or to be, in a dry run). */
  archivedJobs: number;
  archivedEvents: number;
}

/** What retention needs of the ledger: its database, a job's status as of `now`, its summary. */
export interface RetentionPorts {
  db: Kysely<Database>;
  status(jobId: string, now: number): Promise<JobView | null>;
  summary(jobId: string): Promise<SummaryFigures>;
}

/** Most held-back reasons listed per partition; the rest are counted. */
const maxReasons = 10;

/**
 * Archives and drops the month partitions of `events` in which every job finished before
 * the cutoff (`now` minus `olderThan`) and whose month ended before it too: each is written
 * to an NDJSON archive (the export format), synced and read back, recorded in `archives`
 * with its jobs' views in `archived_jobs`, and then detached and dropped. No event row is
 * updated or deleted. With `dryRun`, returns the plan and changes nothing.
 *
 * @example
 * const result = await runRetention(ports, { olderThan: '90d', archiveDir: '/var/archives' });
 */
export async function runRetention(
  ports: RetentionPorts,
  options: RetentionOptions,
): Promise<RetentionResult> {
  const { db } = ports;
  if (typeof options !== 'object' || options === null) {
    throw new InvalidInputError([expectedIssue('options', 'an object', options)]);
  }
  const olderThanMs = parseRetentionAge(options.olderThan);
  const now = options.now === undefined ? Date.now() : new Date(options.now).getTime();
  if (!Number.isFinite(now)) {
    throw new InvalidInputError([expectedIssue('now', 'a time (epoch ms or a Date)', options.now)]);
  }
  if (options.archiveDir !== undefined && typeof options.archiveDir !== 'string') {
    throw new InvalidInputError([expectedIssue('archiveDir', 'a folder path', options.archiveDir)]);
  }
  const cutoff = now - olderThanMs;
  const dryRun = options.dryRun === true;
  const archiveDir = resolve(options.archiveDir ?? 'headway-archives');

  const inDefault = await defaultPartitionMonths(db);
  const partitions: RetentionPartition[] = [];
  const views = new Map<string, Map<string, JobView>>();
  for (const partition of await listEventPartitions(db)) {
    const planned = await planPartition(ports, partition, cutoff, now, inDefault);
    partitions.push(planned.plan);
    views.set(partition.name, planned.views);
  }

  const result: RetentionResult = {
    dryRun,
    now: new Date(now).toISOString(),
    cutoff: new Date(cutoff).toISOString(),
    olderThanMs,
    archiveDir,
    partitions,
    defaultPartition: [...inDefault].map(([month, events]) => ({ month, events })),
    archivedJobs: 0,
    archivedEvents: 0,
  };
  for (const plan of partitions) {
    if (plan.action === 'keep') continue;
    if (!dryRun) {
      const partition = (await listEventPartitions(db)).find((p) => p.name === plan.partition);
      if (!partition) continue;
      await applyPartition(ports, partition, plan, views.get(plan.partition)!, archiveDir, now);
    }
    result.archivedJobs += plan.jobs.length;
    result.archivedEvents += plan.events;
  }
  return result;
}

/** Decides one partition: archive, drop when empty, or keep and say why. */
async function planPartition(
  ports: RetentionPorts,
  partition: EventPartition,
  cutoff: number,
  now: number,
  inDefault: Map<string, number>,
): Promise<{ plan: RetentionPartition; views: Map<string, JobView> }> {
  const jobs = await partitionJobs(ports.db, partition);
  const plan: RetentionPartition = {
    partition: partition.name,
    month: partition.month,
    action: 'keep',
    events: jobs.reduce((sum, job) => sum + job.events, 0),
    jobs: jobs.map((job) => job.jobId),
    heldBack: [],
  };
  const views = new Map<string, JobView>();
  if (partition.endsAt > cutoff) {
    plan.heldBack.push(
      `its month ends at ${new Date(partition.endsAt).toISOString()}, after the cutoff`,
    );
    return { plan, views };
  }
  let held = 0;
  const hold = (reason: string) => {
    held += 1;
    if (held <= maxReasons) plan.heldBack.push(reason);
  };
  const defaultEvents = inDefault.get(partition.month);
  if (defaultEvents !== undefined) {
    hold(`${defaultEvents} events of its month are in the default partition`);
  }
  for (const { jobId } of jobs) {
    const view = await ports.status(jobId, now);
    if (!view) {
      hold(`job ${jobId} has no status`);
    } else if (!isFinished(view.progress.status)) {
      hold(`job ${jobId} is ${view.progress.status}`);
    } else if (view.progress.endedAt === null || view.progress.endedAt >= cutoff) {
      const ended =
        view.progress.endedAt === null
          ? 'at no known time'
          : new Date(view.progress.endedAt).toISOString();
      hold(`job ${jobId} finished ${ended}, not before the cutoff`);
    } else {
      views.set(jobId, view);
    }
  }
  if (held > maxReasons) plan.heldBack.push(`and ${held - maxReasons} more`);
  if (held === 0) plan.action = jobs.length === 0 ? 'drop' : 'archive';
  return { plan, views };
}

/** Writes, checks and records one partition's archive, then detaches and drops it. */
async function applyPartition(
  ports: RetentionPorts,
  partition: EventPartition,
  plan: RetentionPartition,
  views: Map<string, JobView>,
  archiveDir: string,
  now: number,
): Promise<void> {
  const { db } = ports;
  if (plan.action === 'drop') {
    await db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = '10s'`.execute(trx);
      if ((await countPartitionEvents(trx, partition)) > 0) throw changedWhileArchiving(partition);
      await dropEventPartition(trx, partition);
    });
    return;
  }
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const file = resolve(archiveDir, `${partition.name}.${stamp}.ndjson`);
  const written = await writeArchive(db, partition, file);
  if (written.events !== plan.events) throw changedWhileArchiving(partition);
  const counts = new Map(
    (await partitionJobs(db, partition)).map((job) => [job.jobId, job.events]),
  );
  // Folded now, while the events are there; the count below proves nothing came after.
  const summaries = new Map<string, SummaryFigures>();
  for (const jobId of plan.jobs) summaries.set(jobId, await ports.summary(jobId));
  const archiveId = await db.transaction().execute(async (trx) => {
    await sql`set local lock_timeout = '10s'`.execute(trx);
    // Locks the jobs' stream rows, so no append lands between the count and the drop.
    await sql`update streams set archived_at = now()
               where stream_id = any(${plan.jobs}::text[])`.execute(trx);
    if ((await countPartitionEvents(trx, partition)) !== written.events) {
      throw changedWhileArchiving(partition);
    }
    const id = await recordArchive(trx, {
      month: partition.month,
      partition: partition.name,
      file,
      events: written.events,
      sha256: written.sha256,
      jobs: plan.jobs.map((jobId) => ({
        jobId,
        events: counts.get(jobId) ?? 0,
        view: views.get(jobId)!,
        summary: summaries.get(jobId)!,
      })),
    });
    await dropEventPartition(trx, partition);
    return id;
  });
  plan.archive = { file, sha256: written.sha256, events: written.events, archiveId };
}

function changedWhileArchiving(partition: EventPartition): HeadwayError {
  return new HeadwayError(
    'concurrency',
    `Partition ${partition.name} changed while it was being archived: expected the events counted at planning, received others; run retention again`,
  );
}
