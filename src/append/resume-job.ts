import * as z from 'zod';
import type { EventInput, JsonValue } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { combineProjections } from '../../projections/combine.ts';
import {
  comparePlanOrder,
  inFlightItems,
  jobItems,
  pendingItems,
  stuckItems,
} from '../../projections/job-items.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import type { JobStatus } from '../../projections/job-progress.ts';
import type { Projection } from '../../projections/projection.ts';
import type { AppendResult } from './prepare-streams.ts';
import { ConcurrencyError, InvalidInputError, JobFinishedError, NotFoundError } from '../errors.ts';
import type { ExpectedVersion } from '../errors.ts';
import { toValidationIssues } from '../validation.ts';
import { isFinished } from '../../projections/job-status.ts';

/** Options of `resume`. */
export interface ResumeOptions {
  /**
   * In-flight items whose lease ended before this time are released (default now). An item
   * started without a lease has one of `defaultLeaseMs`.
   */
  leaseExpiredBefore?: Date | number;
  /** The lease of items started without one (default 0: any item in flight before the cut-off). */
  defaultLeaseMs?: number;
  /** Why the job resumes; recorded on `job.resumed` (default "resumed"). */
  reason?: string;
  /** The producer's clock for the events resume records (default now). */
  occurredAt?: Date | string;
}

/** Where a resumed job picks up. */
export interface ResumePoint {
  jobId: string;
  /** The job's status before it resumed. */
  status: JobStatus;
  /** The cursor of the last `checkpoint.saved`, or null. */
  checkpoint: JsonValue | null;
  checkpointNote: string | null;
  /** Items planned or released and not started since, including those released now. */
  pending: string[];
  /** Items whose lease expired, released now: their next start counts as a retry. */
  expired: string[];
  /** Items still in flight under a lease that has not expired. */
  inFlight: string[];
  /** The job's version after the resume's events. */
  version: number;
}

/** What resume needs of a ledger. */
export interface ResumeContext {
  project<S>(jobId: string, projection: Projection<S>): Promise<S>;
  append(
    streamId: string,
    events: readonly EventInput[],
    options: { expectedVersion: ExpectedVersion },
  ): Promise<AppendResult>;
}

const optionsSchema = z.strictObject({
  leaseExpiredBefore: z.union([z.date(), z.number().finite()]).optional(),
  defaultLeaseMs: z.number().int().min(0).optional(),
  reason: z.string().min(1).max(limits.textLength).optional(),
  occurredAt: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
});

const resumeView = combineProjections({ progress: jobProgress, items: jobItems });

/**
 * Resumes a job after a crash: releases in-flight items whose lease expired, records
 * `job.resumed`, and returns the last checkpoint and the items left to do. A finished
 * job is refused with `JobFinishedError`, and nothing is recorded. The events go
 * in with the version the answer was read at, so a concurrent change makes it read again.
 */
export async function resumeJob(
  context: ResumeContext,
  jobId: string,
  options: ResumeOptions = {},
): Promise<ResumePoint> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, ''));
  const cutoff =
    options.leaseExpiredBefore === undefined
      ? Date.now()
      : new Date(options.leaseExpiredBefore).getTime();
  for (let attempt = 0; ; attempt += 1) {
    const { progress, items } = await context.project(jobId, resumeView);
    if (progress.version === 0) throw new NotFoundError(`Job '${jobId}'`);
    const { status } = progress;
    if (isFinished(status)) {
      // Nothing is recorded: a finished job stays finished.
      throw new JobFinishedError(jobId, status);
    }
    const expiredItems = stuckItems(items, cutoff, options.defaultLeaseMs ?? 0);
    const expired = expiredItems.map((item) => item.itemId);
    const expiredSet = new Set(expired);
    const inFlight = inFlightItems(items)
      .map((item) => item.itemId)
      .filter((itemId) => !expiredSet.has(itemId));
    const occurredAt = options.occurredAt ?? new Date();
    const releaseReason = `lease expired: ${options.reason ?? 'resumed'}`.slice(
      0,
      limits.textLength,
    );
    const events: EventInput[] = [];
    for (let index = 0; index < expired.length; index += limits.itemsPerEvent) {
      events.push({
        type: 'items.released',
        data: {
          itemIds: expired.slice(index, index + limits.itemsPerEvent),
          reason: releaseReason,
        },
        occurredAt,
      });
    }
    events.push({ type: 'job.resumed', data: { reason: options.reason ?? 'resumed' }, occurredAt });
    try {
      const result = await context.append(jobId, events, { expectedVersion: progress.version });
      return {
        jobId,
        status: progress.status,
        checkpoint: progress.lastCheckpoint?.cursor ?? null,
        checkpointNote: progress.lastCheckpoint?.note ?? null,
        // What is left, in plan order: the released items go back to their places.
        pending: [...pendingItems(items), ...expiredItems]
          .sort(comparePlanOrder)
          .map((item) => item.itemId),
        expired,
        inFlight,
        version: result.nextExpectedVersion,
      };
    } catch (error) {
      // Someone recorded meanwhile: read again, a few times.
      if (!(error instanceof ConcurrencyError) || attempt >= 4) throw error;
    }
  }
}
