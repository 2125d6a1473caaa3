import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../schema/database.ts';
import { limits } from '../schema/limits.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { addValue, emptyHistogram } from '../projections/histogram.ts';
import { own, setOwn } from '../projections/own.ts';
import { stageFigures } from '../projections/stage-metrics.ts';
import type { StageFigures, StageMetricsState } from '../projections/stage-metrics.ts';
import { estimateEta, jobEta } from '../projections/job-eta.ts';
import type { EtaEstimate, JobEtaState } from '../projections/job-eta.ts';
import type { JobProgressState, JobStatus } from '../projections/job-progress.ts';
import type { Cursor } from './cursor.ts';
import { InvalidInputError } from './errors.ts';
import { jobsProjection, mainPart } from './persisted-projection.ts';
import { readGenerations, readStateParts } from './projection-tables.ts';
import type { Generation } from './projection-tables.ts';
import { toValidationIssues } from './prepare-events.ts';

/** A job's progress without its per-item table. */
export type JobSnapshot = Omit<JobProgressState, 'items'>;

/** A job as lists show it: its progress and its ETA as of the query. */
export interface JobView {
  jobId: string;
  progress: JobSnapshot;
  eta: EtaEstimate;
}

/** The children of a job started with `parentJobId`, rolled up. */
export interface JobRollUp {
  count: number;
  byStatus: Partial<Record<JobStatus, number>>;
  processed: number;
  /** The sum of the children's totals; null while any is unknown. */
  total: number | null;
  /** processed / total when every total is known, else the mean of the children's percents. */
  percent: number;
  /** When the last unfinished child is expected to finish; null when any cannot tell. */
  eta: { etaMs: number | null; range: { lowMs: number; highMs: number } | null };
  children: JobView[];
}

/** A job's status: its progress, ETA, and its children rolled up when it has any. */
export interface JobStatusView extends JobView {
  children: JobRollUp | null;
}

/** Filters of `jobs`. */
export interface JobsQuery {
  project?: string;
  kind?: string;
  status?: readonly JobStatus[];
  /** Only running, paused and pending jobs, and those that ended within `finishedVisibleMs`. */
  active?: boolean;
  /** How long a finished job stays in the active view (default 10 minutes). */
  finishedVisibleMs?: number;
  parentJobId?: string;
  /** At most this many, most recently updated first (default 100, maximum 10,000). */
  limit?: number;
  /** The clock for `active` and ETAs (default now). */
  now?: number;
}

const statuses = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled'] as const;

const jobsQuerySchema = z.strictObject({
  project: z.string().min(1).max(limits.nameLength).optional(),
  kind: z.string().min(1).max(limits.nameLength).optional(),
  status: z.array(z.enum(statuses)).max(statuses.length).optional(),
  active: z.boolean().optional(),
  finishedVisibleMs: z.number().int().min(0).optional(),
  parentJobId: z.string().min(1).max(limits.idLength).optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
  now: z.number().finite().optional(),
});

/** Figures of one stage name within one job kind, across jobs. */
export type StageMetric = StageFigures;

/** One project's jobs counted. */
export interface ProjectView {
  project: string;
  jobs: number;
  byStatus: Partial<Record<JobStatus, number>>;
  processed: number;
  completed: number;
  failed: number;
  skipped: number;
}

/** What the views need of the ledger. */
export interface JobViewsContext {
  db: Kysely<Database>;
  /** Events of one stream after a version, in order, at most `limit`. */
  readStream(streamId: string, fromVersion: number, limit: number): Promise<RecordedEvent[]>;
  /** The whole log after a cursor, at most `limit` events. */
  readPage(
    after: Cursor,
    limit: number,
    filter?: { types?: string[]; streamIds?: string[] },
  ): Promise<{ events: RecordedEvent[]; next: Cursor }>;
}

const defaultFinishedVisibleMs = 10 * 60_000;

/**
 * Queries over the persisted `jobs` projection. Each answer is the stored state plus the
 * log past it, so it is never older than the last append the caller saw; without a
 * current generation (before the first catch-up, or while code changes rebuild it) the
 * answer is folded from the log alone.
 */
export class JobViews {
  constructor(private readonly context: JobViewsContext) {}

  /** The active generation of `jobs` written by the current code, if any. */
  private async generation(): Promise<Generation | null> {
    const rows = await readGenerations(this.context.db, jobsProjection.name);
    return (
      rows.find(
        (row) => row.status === 'active' && row.codeVersion === jobsProjection.projection.version,
      ) ?? null
    );
  }

  /**
   * One job's state: stored, plus the events of its stream after it; null if unknown.
   * Item buckets are loaded only for `itemIds` and for items the tail touches.
   */
  async jobState(jobId: string, itemIds: readonly string[] = []): Promise<JobEtaState | null> {
    const generation = await this.generation();
    const read = async (parts: string[]) =>
      generation
        ? ((
            await readStateParts(
              this.context.db,
              jobsProjection.name,
              generation.generation,
              [jobId],
              parts,
            )
          ).get(jobId) ?? new Map<string, unknown>())
        : new Map<string, unknown>();
    const stored = await read([mainPart, ...jobsProjection.partsOfItems(itemIds)]);
    const loaded = new Set(stored.keys());
    let state = jobsProjection.join(stored);
    for (;;) {
      const tail = await this.context.readStream(
        jobId,
        state.progress.version + 1,
        limits.readPage,
      );
      if (tail.length === 0) break;
      if (loaded.has(mainPart)) {
        const missing = [
          ...new Set(tail.flatMap((event) => jobsProjection.partsFor(event))),
        ].filter((part) => !loaded.has(part));
        if (missing.length > 0) {
          state = jobsProjection.fill(state, await read(missing));
          for (const part of missing) loaded.add(part);
        }
      }
      for (const event of tail) state = jobEta.evolve(state, event);
      if (tail.length < limits.readPage) break;
    }
    return state.progress.version === 0 ? null : state;
  }

  /** A job's progress, ETA and roll-up of its children; null for an unknown job. */
  async status(jobId: string, now = Date.now()): Promise<JobStatusView | null> {
    const state = await this.jobState(jobId);
    if (!state) return null;
    const children = await this.jobs({ parentJobId: jobId, limit: 10_000, now });
    return { ...toView(jobId, state, now), children: children.length ? rollUp(children) : null };
  }

  /** Jobs matching the filters, most recently updated first. */
  async jobs(query: JobsQuery = {}): Promise<JobView[]> {
    const parsed = jobsQuerySchema.safeParse(query);
    if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, ''));
    const filter = parsed.data;
    const now = filter.now ?? Date.now();
    const limit = filter.limit ?? 100;
    const states = await this.allStates(filter, limit);
    const visibleMs = filter.finishedVisibleMs ?? defaultFinishedVisibleMs;
    const views: JobView[] = [];
    for (const [jobId, state] of states) {
      const { progress } = state;
      if (progress.version === 0) continue;
      if (filter.project !== undefined && progress.project !== filter.project) continue;
      if (filter.kind !== undefined && progress.kind !== filter.kind) continue;
      if (filter.parentJobId !== undefined && progress.parentJobId !== filter.parentJobId) continue;
      if (filter.status && !filter.status.includes(progress.status)) continue;
      if (filter.active && !isActive(progress, now, visibleMs)) continue;
      views.push(toView(jobId, state, now));
    }
    views.sort(
      (a, b) =>
        (b.progress.updatedAt ?? 0) - (a.progress.updatedAt ?? 0) || a.jobId.localeCompare(b.jobId),
    );
    return views.slice(0, limit);
  }

  /** Every project's jobs counted, optionally only active jobs. */
  async projects(query: Pick<JobsQuery, 'active' | 'finishedVisibleMs' | 'now'> = {}) {
    const jobs = await this.jobs({ ...query, limit: 10_000 });
    const byProject = new Map<string, ProjectView>();
    for (const { progress } of jobs) {
      const name = progress.project ?? '(none)';
      let view = byProject.get(name);
      if (!view) {
        view = {
          project: name,
          jobs: 0,
          byStatus: {},
          processed: 0,
          completed: 0,
          failed: 0,
          skipped: 0,
        };
        byProject.set(name, view);
      }
      view.jobs += 1;
      view.byStatus[progress.status] = (view.byStatus[progress.status] ?? 0) + 1;
      view.processed += progress.processed;
      view.completed += progress.counts.completed;
      view.failed += progress.counts.failed;
      view.skipped += progress.counts.skipped;
    }
    return [...byProject.values()].sort((a, b) => a.project.localeCompare(b.project));
  }

  /** Count, mean and p95 duration and throughput of each stage name, per job kind. */
  async stageMetrics(query: Pick<JobsQuery, 'project' | 'kind'> = {}): Promise<StageMetric[]> {
    const jobs = await this.jobs({ ...query, limit: 10_000 });
    const stages: StageMetricsState['stages'] = {};
    for (const { progress } of jobs) {
      const kind = progress.kind ?? '(unknown)';
      for (const run of progress.stages) {
        if (run.durationMs === null) continue;
        const key = `${kind}/${run.name}`;
        const aggregate = own(stages, key) ?? {
          kind,
          stage: run.name,
          runs: 0,
          durations: emptyHistogram(),
          items: 0,
        };
        aggregate.runs += 1;
        addValue(aggregate.durations, run.durationMs);
        aggregate.items += run.processed;
        setOwn(stages, key, aggregate);
      }
    }
    // The same figures the pure stage-metrics projection gives, from stored job states.
    return stageFigures({ jobs: {}, stages });
  }

  private tailEvents(start: Cursor, filter?: { types?: string[]; streamIds?: string[] }) {
    return pagesAfter(this.context, start, filter);
  }

  /**
   * Stored states that may match, plus every job the log past the checkpoint touches,
   * folded up to date. The SQL filters are a first cut; `jobs` filters again after the fold.
   */
  private async allStates(
    filter: z.infer<typeof jobsQuerySchema>,
    limit: number,
  ): Promise<Map<string, JobEtaState>> {
    const generation = await this.generation();
    const states = new Map<string, JobEtaState>();
    if (generation) {
      let query = this.context.db
        .selectFrom('projection_states')
        .select(['key', 'value'])
        .where('projection', '=', jobsProjection.name)
        .where('generation', '=', generation.generation)
        .where('part', '=', mainPart);
      const field = (name: string) => sql<string>`value -> 'progress' ->> ${name}`;
      if (filter.project !== undefined) query = query.where(field('project'), '=', filter.project);
      if (filter.kind !== undefined) query = query.where(field('kind'), '=', filter.kind);
      if (filter.parentJobId !== undefined) {
        query = query.where(field('parentJobId'), '=', filter.parentJobId);
      }
      if (filter.status) query = query.where(field('status'), 'in', filter.status);
      if (filter.active) {
        const endedSince =
          (filter.now ?? Date.now()) - (filter.finishedVisibleMs ?? defaultFinishedVisibleMs);
        query = query.where(
          sql<boolean>`(${field('status')} in ('pending', 'running', 'paused') or (${field('endedAt')})::float8 >= ${endedSince})`,
        );
      }
      const rows = await query
        .orderBy(sql`(value -> 'progress' ->> 'updatedAt')::float8 desc nulls last`)
        .orderBy('key')
        .limit(limit)
        .execute();
      for (const row of rows)
        states.set(row.key, jobsProjection.join(new Map([[mainPart, row.value]])));
    }
    // The log past the checkpoint (all of it without a generation).
    const start = generation?.cursor ?? { transactionId: 0n, position: 0n };
    let tailFilter: { streamIds: string[] } | undefined;
    if (filter.parentJobId !== undefined) {
      // Children only: the stored ones and those started since, so a parent's status
      // never folds the whole tail of the log.
      const children = new Set(states.keys());
      for await (const event of this.tailEvents(start, { types: ['job.started'] })) {
        if (event.type === 'job.started' && event.data.parentJobId === filter.parentJobId) {
          children.add(event.streamId);
        }
      }
      if (children.size === 0) return states;
      tailFilter = { streamIds: [...children].slice(0, 1_000) };
    }
    const tail = new Map<string, RecordedEvent[]>();
    for await (const event of this.tailEvents(start, tailFilter)) {
      const events = tail.get(event.streamId);
      if (events) events.push(event);
      else tail.set(event.streamId, [event]);
    }
    if (tail.size === 0) return states;
    const parts = new Map<string, Map<string, unknown>>();
    if (generation) {
      const needed = new Set([mainPart]);
      for (const events of tail.values()) {
        for (const event of events)
          for (const part of jobsProjection.partsFor(event)) needed.add(part);
      }
      const stored = await readStateParts(
        this.context.db,
        jobsProjection.name,
        generation.generation,
        [...tail.keys()],
        [...needed],
      );
      for (const [key, value] of stored) parts.set(key, value);
    }
    for (const [key, events] of tail) {
      let state = parts.has(key) ? jobsProjection.join(parts.get(key)!) : jobEta.initial();
      for (const event of events) state = jobEta.evolve(state, event);
      states.set(key, state);
    }
    return states;
  }
}

/** Events after a cursor, page by page, until caught up. */
async function* pagesAfter(
  context: JobViewsContext,
  start: Cursor,
  filter?: { types?: string[]; streamIds?: string[] },
): AsyncGenerator<RecordedEvent> {
  let after = start;
  for (;;) {
    const page = await context.readPage(after, limits.readPage, filter);
    yield* page.events;
    after = page.next;
    if (page.events.length < limits.readPage) return;
  }
}

function isActive(progress: JobSnapshot, now: number, visibleMs: number): boolean {
  if (
    progress.status === 'running' ||
    progress.status === 'paused' ||
    progress.status === 'pending'
  ) {
    return true;
  }
  return progress.endedAt !== null && now - progress.endedAt <= visibleMs;
}

function toView(jobId: string, state: JobEtaState, now: number): JobView {
  const { items: _items, ...progress } = state.progress;
  return { jobId, progress, eta: estimateEta(state, now) };
}

function rollUp(children: JobView[]): JobRollUp {
  const byStatus: JobRollUp['byStatus'] = {};
  let processed = 0;
  let total: number | null = 0;
  let percentSum = 0;
  let etaMs: number | null = 0;
  let range: { lowMs: number; highMs: number } | null = { lowMs: 0, highMs: 0 };
  for (const { progress, eta } of children) {
    byStatus[progress.status] = (byStatus[progress.status] ?? 0) + 1;
    processed += progress.processed;
    total = total === null || progress.total === null ? null : total + progress.total;
    percentSum += progress.percent;
    const finished = ['completed', 'failed', 'cancelled'].includes(progress.status);
    if (finished) continue;
    // Children run side by side: the batch is done when its slowest child is.
    etaMs = etaMs === null || eta.etaMs === null ? null : Math.max(etaMs, eta.etaMs);
    range =
      range === null || eta.range === null
        ? null
        : {
            lowMs: Math.max(range.lowMs, eta.range.lowMs),
            highMs: Math.max(range.highMs, eta.range.highMs),
          };
  }
  const percent =
    total !== null && total > 0
      ? Math.min(100, (processed / total) * 100)
      : percentSum / children.length;
  return {
    count: children.length,
    byStatus,
    processed,
    total,
    percent,
    eta: { etaMs, range: etaMs === null ? null : range },
    children,
  };
}
