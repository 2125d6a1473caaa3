import { v5 as uuidFromName } from 'uuid';
import { conditionNames } from '../../schema/events.ts';
import type { EventInput } from '../../schema/events.ts';
import { jobConditions } from '../../projections/job-conditions.ts';
import { estimateEta } from '../../projections/job-eta.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import type { AppendResult, StreamAppend } from '../append/prepare-streams.ts';
import { sleep } from '../backoff.ts';
import { ConcurrencyError, IdempotencyConflictError, InvalidEventError } from '../errors.ts';
import { readCurrentJobsGeneration } from '../persisted/stored-jobs.ts';
import type { JobViewsContext } from '../queries/job-state.ts';
import { tailAndStoredStates } from '../queries/job-states.ts';
import type { LedgerStore } from '../store/ledger-store.ts';
import { holdLockForever } from '../store/lock-holder.ts';
import { conditionChanges } from './condition-changes.ts';
import type { ConditionChange } from './condition-changes.ts';

// Records conditions in the log: one process at a time (the holder of the `conditions` lock)
// judges the unfinished jobs every few seconds and appends what changed, each record with an
// id made from the job, the version it judged and the change, so a second judge of the same
// state (another server, a restart) writes nothing new (docs/architecture.md, "Conditions").

/** The namespace of condition record ids (a fixed UUID). */
const conditionIdNamespace = '5d0b6f4e-8c1a-4f7e-9a52-3c1e0f6b2d41';

/** The lock the condition watcher holds while it runs. */
export const conditionsLockName = 'conditions';

/** The id of the record of `change` judged at `version` of `jobId`: the same wherever it is judged. */
export function conditionEventId(jobId: string, version: number, change: ConditionChange): string {
  return uuidFromName(
    `${jobId}\u0000${version}\u0000${change.type}\u0000${change.data.condition}`,
    conditionIdNamespace,
  );
}

/** What the watcher needs of the ledger. */
export interface ConditionWatcherContext {
  store: Pick<LedgerStore, 'db' | 'tryLock'>;
  /** The primary's views: conditions are judged on the latest state. */
  views: JobViewsContext;
  /** Appends to several jobs in one transaction, all or none. */
  appendMany(streams: readonly StreamAppend[]): Promise<AppendResult[]>;
}

/** How often and how the watcher judges. */
export interface ConditionWatcherOptions {
  /** How often the unfinished jobs are judged (default 5,000 ms). */
  intervalMs?: number;
  /** Longest wait between attempts to take the lock another process holds (default 2,000 ms). */
  lockRetryMs?: number;
  /** Errors the watcher recovered from; default: ignored. */
  onError?: (error: unknown) => void;
  /** Called after each sweep, with what it did. */
  onSweep?: (report: SweepReport) => void;
}

/** What one sweep did. */
export interface SweepReport {
  /** Unfinished jobs judged: those that may hold a condition or have one raised. */
  judged: number;
  /** Conditions recorded as raised, and as cleared. */
  raised: number;
  cleared: number;
  /** Jobs whose records were refused (most often: they moved while being judged); judged again next sweep. */
  moved: number;
  durationMs: number;
}

/**
 * A refusal that concerns one job of a batch: it moved since it was judged (a concurrency
 * error), another judge wrote the same ids with other figures (an idempotency conflict), or
 * its records were refused (an invalid event).
 */
function isRefusalOfOneJob(error: unknown): boolean {
  return (
    error instanceof ConcurrencyError ||
    error instanceof IdempotencyConflictError ||
    error instanceof InvalidEventError
  );
}

/** One job's condition records, appended at the version judged. */
interface ConditionAppend extends StreamAppend {
  events: EventInput[];
  expectedVersion: number;
}

/** Jobs whose records go in one transaction. */
const appendsPerTransaction = 500;

/**
 * Judges unfinished jobs and records their conditions in the log, once each.
 *
 * @example
 * const watcher = new ConditionWatcher(context, { intervalMs: 5_000 });
 * watcher.start();
 * await watcher.stop();
 */
export class ConditionWatcher {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly intervalMs: number;
  private readonly lockRetryMs: number;

  constructor(
    private readonly context: ConditionWatcherContext,
    private readonly options: ConditionWatcherOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 5_000;
    this.lockRetryMs = options.lockRetryMs ?? 2_000;
  }

  /** Runs in the background until `stop`: waits for the lock, then sweeps every interval. */
  start(): void {
    this.loop ??= this.runForever();
  }

  /** Stops after the sweep in flight, and releases the lock. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  /**
   * Judges every unfinished job that may hold a condition, or has one raised, as of `now`,
   * and appends the changes. Safe to run beside another watcher: a change judged twice at
   * the same version is written once.
   */
  async sweep(now = Date.now()): Promise<SweepReport> {
    const started = performance.now();
    const report: SweepReport = { judged: 0, raised: 0, cleared: 0, moved: 0, durationMs: 0 };
    const appends: ConditionAppend[] = [];
    for (const [jobId, state] of await this.candidates(now)) {
      if (state.progress.version === 0) continue;
      report.judged += 1;
      const settings = this.context.views.conditionSettings;
      const conditions = jobConditions(state.progress, estimateEta(state, now), now, settings);
      const changes = conditionChanges(state.progress, conditions, now);
      if (changes.length === 0) continue;
      const { version } = state.progress;
      const events = changes.map((change): EventInput => ({
        ...change,
        eventId: conditionEventId(jobId, version, change),
        occurredAt: new Date(now),
        metadata: { actor: 'headway', source: 'conditions' },
      }));
      appends.push({ streamId: jobId, events, expectedVersion: version });
    }
    for (let start = 0; start < appends.length; start += appendsPerTransaction) {
      await this.record(appends.slice(start, start + appendsPerTransaction), report);
    }
    report.durationMs = performance.now() - started;
    return report;
  }

  /**
   * Appends the records of several jobs in one transaction. When one of the jobs moved since
   * it was judged (refusing the whole batch), each alone, skipping those that moved: they
   * are judged again next time, on their new state.
   */
  private async record(appends: readonly ConditionAppend[], report: SweepReport): Promise<void> {
    const count = (stream: ConditionAppend) => {
      for (const event of stream.events) {
        if (event.type === 'condition.raised') report.raised += 1;
        else report.cleared += 1;
      }
    };
    try {
      await this.context.appendMany(appends);
      appends.forEach(count);
      return;
    } catch (error) {
      if (!isRefusalOfOneJob(error)) throw error;
    }
    for (const stream of appends) {
      try {
        await this.context.appendMany([stream]);
        count(stream);
      } catch (error) {
        if (!isRefusalOfOneJob(error)) throw error;
        // Judged again next time; one job's refusal never holds back the others.
        report.moved += 1;
        if (!(error instanceof ConcurrencyError)) this.options.onError?.(error);
      }
    }
  }

  /**
   * The jobs to judge: every job the log past the stored checkpoint touches, folded up to
   * date, and the stored unfinished jobs that may hold a condition or have one raised.
   */
  private async candidates(now: number): Promise<Map<string, JobEtaState>> {
    const { views } = this.context;
    const generation = await readCurrentJobsGeneration(views.log.db);
    return tailAndStoredStates(views, generation, ({ except }) => ({
      ...except,
      mayHold: { conditions: conditionNames, now, settings: views.conditionSettings },
      orRaised: true,
    }));
  }

  private runForever(): Promise<void> {
    const { store } = this.context;
    const options = {
      tryLock: () => store.tryLock(conditionsLockName),
      lockRetryMs: this.lockRetryMs,
      signal: this.stopping.signal,
      ...(this.options.onError ? { onError: this.options.onError } : {}),
    };
    return holdLockForever(options, async ({ signal: holding, recovered }) => {
      while (!holding.aborted) {
        // Swept first: an optional call would skip evaluating its argument.
        const report = await this.sweep();
        recovered();
        this.options.onSweep?.(report);
        await sleep(this.intervalMs, holding);
      }
    });
  }
}
