import { sql } from 'kysely';
import type { Kysely, RawBuilder, Selectable } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../schema/database.ts';
import { limits } from '../../schema/limits.ts';
import { isStorableText, unstorableTextMessage } from '../../schema/events.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { addValue, emptyHistogram } from '../../projections/histogram.ts';
import { own, setOwn } from '../../projections/own.ts';
import { finishedStageRuns, stageFigures } from '../../projections/stage-metrics.ts';
import type { StageFigures, StageMetricsState } from '../../projections/stage-metrics.ts';
import { estimateEta, jobEta } from '../../projections/job-eta.ts';
import { rollUp } from '../../projections/job-rollup.ts';
import type { JobRollUp, JobSnapshot, JobView } from '../../projections/job-rollup.ts';
import type { EtaContext } from '../../projections/job-eta.ts';
import { fold } from '../../projections/projection.ts';
import type { EtaEstimate, JobEtaState } from '../../projections/job-eta.ts';
import type { JobProgressState, JobStatus } from '../../projections/job-progress.ts';
import type { LogReader } from '../store/log-reads.ts';
import { InvalidInputError } from '../errors.ts';
import { escapeLike } from '../store/escape-like.ts';
import { jobsProjection, mainPart } from '../persisted/persisted-projection.ts';
import {
  readGenerations,
  readItemSubset,
  readStateParts,
  toGeneration,
} from '../persisted/projection-tables.ts';
import type { Generation } from '../persisted/projection-tables.ts';
import { toValidationIssues } from '../validation.ts';
import { selectEventColumns } from '../store/recorded-row.ts';
import type { EventRow } from '../store/recorded-row.ts';

export type { JobRollUp, JobSnapshot, JobView } from '../../projections/job-rollup.ts';

/** A job's status: its progress, ETA, and its children rolled up when it has any. */
export interface JobStatusView extends JobView {
  children: JobRollUp | null;
}

/** A job's processed count over event time, and its ETA, for charts. */
export interface JobThroughput {
  jobId: string;
  /** The clock the ETA was taken at (epoch ms). */
  now: number;
  /** Processed at the start, at each closed rate window and at the end; at most 128. */
  points: { at: number; processed: number }[];
  eta: EtaEstimate;
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
  /** Only this job: a list of it, or empty when the other filters leave it out. */
  jobId?: string;
  /** Case-insensitive text in the job's id, name, kind or project. */
  text?: string;
  /** At most this many, most recently updated first (default 100, maximum 10,000). */
  limit?: number;
  /** The clock for `active` and ETAs (default now). */
  now?: number;
  /** Continue after this job of a previous page (see `jobsCursor`). */
  after?: string;
}

/**
 * Where a page of `jobs` ended, for its `after`: the last job's update time and id.
 *
 * @example
 * const next = await ledger.jobs({ limit: 50, after: jobsCursor(page.at(-1)!) });
 */
export function jobsCursor(view: JobView): string {
  return `${view.progress.updatedAt ?? 0}:${view.jobId}`;
}

const jobsCursorPattern = /^(\d{1,16}):(.+)$/;

const statuses = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled'] as const;

/** Text that PostgreSQL can compare: no NUL, no lone surrogate. */
const storable = (max: number) =>
  z.string().min(1).max(max).refine(isStorableText, unstorableTextMessage);

const jobsQuerySchema = z.strictObject({
  project: storable(limits.nameLength).optional(),
  kind: storable(limits.nameLength).optional(),
  status: z.array(z.enum(statuses)).max(statuses.length).optional(),
  active: z.boolean().optional(),
  finishedVisibleMs: z.number().int().min(0).optional(),
  parentJobId: storable(limits.idLength).optional(),
  jobId: storable(limits.idLength).optional(),
  text: storable(200).optional(),
  limit: z.number().int().min(1).max(10_000).optional(),
  now: z.number().finite().optional(),
  after: z
    .string()
    .max(limits.idLength + 20)
    .regex(jobsCursorPattern, 'expected the cursor of a previous page, such as 1795446738868:job-1')
    .optional(),
});

function parseJobsQuery(query: JobsQuery) {
  const parsed = jobsQuerySchema.safeParse(query);
  if (!parsed.success) throw new InvalidInputError(toValidationIssues(parsed.error, ''));
  return parsed.data;
}

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

/** What the views need of the ledger: its log reader, and the states its runner holds. */
export interface JobViewsContext {
  log: LogReader;
  /** A job's whole state, items included, as a runner in this process holds it, if any. */
  cachedState(jobId: string): JobEtaState | undefined;
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
    const rows = await readGenerations(this.context.log.db, jobsProjection.name);
    return (
      rows.find((row) => row.status === 'active' && row.codeVersion === jobsProjection.version) ??
      null
    );
  }

  /**
   * In one round trip: the current generation, the job's stored state without its items,
   * the first page of its events after that state, and its children's ids when asked for.
   */
  private async head(db: Kysely<Database>, jobId: string, withChildren: boolean) {
    const storedVersion = sql<number>`coalesce((s.value -> 'progress' ->> 'version')::int, 0)`;
    const { rows } = await sql<
      Partial<Selectable<Database['projection_checkpoints']>> & {
        value: JobEtaState | null;
        children: string[] | null;
        tail: EventRow[];
      }
    >`
      select c.*, s.value, ${childrenAndTail(db, jobId, storedVersion, withChildren)}
        from (select 1) as one
        left join projection_checkpoints c
          on c.projection = ${jobsProjection.name} and c.status = 'active'
         and c.code_version = ${jobsProjection.version}
        left join projection_states s
          on s.projection = c.projection and s.generation = c.generation
         and s.key = ${jobId} and s.part = ${mainPart}`.execute(db);
    const { value, children, tail, ...checkpoint } = rows[0]!;
    const generation =
      checkpoint.generation == null
        ? null
        : toGeneration(checkpoint as Selectable<Database['projection_checkpoints']>);
    return { generation, main: value, children: children ?? [], tail: this.toEvents(tail) };
  }

  private toEvents(rows: EventRow[]): RecordedEvent[] {
    return rows.map((row) => this.context.log.toEvent(row));
  }

  /**
   * One job's state: stored, plus the events of its stream after it; null if unknown.
   * Its item table holds only `itemIds` and the items the tail touches.
   */
  async jobState(jobId: string, itemIds: readonly string[] = []): Promise<JobEtaState | null> {
    return (await this.jobStateAndChildren(jobId, itemIds, false)).state;
  }

  /**
   * The job's state and its children's ids, read in one snapshot: the runner commits
   * between any two reads, and items of a newer state must not meet an older main part.
   */
  private async jobStateAndChildren(
    jobId: string,
    itemIds: readonly string[],
    withChildren: boolean,
  ): Promise<{ state: JobEtaState | null; generation?: Generation | null; children: string[] }> {
    const cached = this.context.cachedState(jobId);
    if (cached) {
      // A whole state, items included: one statement for what came after it.
      const { db } = this.context.log;
      const { rows } = await sql<{ children: string[] | null; tail: EventRow[] }>`
        select ${childrenAndTail(db, jobId, sql<number>`${cached.progress.version}::int`, withChildren)}
      `.execute(db);
      const { children, tail } = rows[0]!;
      let state = fold(jobEta, this.toEvents(tail), cached);
      while (tail.length === limits.readPage) {
        const page = await this.context.log.readStreamTail(
          db,
          jobId,
          state.progress.version + 1,
          limits.readPage,
        );
        state = fold(jobEta, page, state);
        if (page.length < limits.readPage) break;
      }
      return { state, children: children ?? [] };
    }
    return this.context.log.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => {
        const { generation, main, children, tail } = await this.head(trx, jobId, withChildren);
        const stored = generation && main ? { generation, main } : null;
        const state = await this.foldTail(trx, jobId, itemIds, stored, tail);
        return { state, generation, children };
      });
  }

  /**
   * Folds a job's stream past its stored state (from the start without one), starting
   * with its first page, loading just the items the tail touches.
   */
  private async foldTail(
    db: Kysely<Database>,
    jobId: string,
    itemIds: readonly string[],
    stored: { generation: Generation; main: JobEtaState } | null,
    firstPage: RecordedEvent[],
  ): Promise<JobEtaState | null> {
    let state = stored ? jobsProjection.join(new Map([[mainPart, stored.main]])) : jobEta.initial();
    const loaded = new Set<string>();
    let wanted = [...itemIds];
    for (let page = 0; ; page += 1) {
      const tail =
        page === 0
          ? firstPage
          : await this.context.log.readStreamTail(
              db,
              jobId,
              state.progress.version + 1,
              limits.readPage,
            );
      if (stored) {
        for (const event of tail) wanted.push(...jobsProjection.itemsFor(event));
        const missing = [...new Set(wanted)].filter((itemId) => !loaded.has(itemId));
        wanted = [];
        if (missing.length > 0) {
          const parts = await readItemSubset(
            db,
            jobsProjection.name,
            stored.generation.generation,
            jobId,
            jobsProjection.partsOfItems(missing),
            missing,
          );
          state = jobsProjection.withItems(state, parts);
          for (const itemId of missing) loaded.add(itemId);
        }
      }
      state = fold(jobEta, tail, state);
      if (tail.length < limits.readPage) break;
    }
    return state.progress.version === 0 ? null : state;
  }

  /** A job's progress, ETA and roll-up of its children; null for an unknown job. */
  async status(jobId: string, now = Date.now()): Promise<JobStatusView | null> {
    const { state, generation, children } = await this.jobStateAndChildren(jobId, [], true);
    if (!state) return null;
    let rolledUp: JobRollUp | null = null;
    if (children.length > 0) {
      const states = await this.statesOf(children, generation ?? (await this.generation()));
      const views = [...states].map(([childId, child]) => toView(childId, child, now));
      rolledUp = rollUp(sortByUpdate(views));
    }
    const view = toView(jobId, state, now);
    // Only a staged job with a stage it has not measured needs earlier jobs' rates.
    const stageRates = await this.stageRatesFor(view, now);
    const eta = stageRates ? estimateEta(state, now, { stageRates }) : view.eta;
    return { ...view, eta, children: rolledUp };
  }

  /** Stage rates by kind, from finished jobs; a status read looks them up at most this often. */
  private readonly stageRatesByKind = new Map<
    string,
    { at: number; rates: Promise<Record<string, number | null>> }
  >();

  /**
   * The stage rates of earlier jobs of a job's kind, when its ETA guessed a stage from the
   * weights or could not tell; undefined otherwise. Cached per kind for `stageRatesTtlMs`.
   */
  private async stageRatesFor(view: JobView, now: number): Promise<EtaContext['stageRates']> {
    const { progress, eta } = view;
    if (progress.declaredStages.length === 0 || progress.kind === null) return undefined;
    const guessed = eta.stages.some(
      (stage) => stage.basis === 'weights' || stage.basis === 'unknown',
    );
    if (!guessed) return undefined;
    const kind = progress.kind;
    let cached = this.stageRatesByKind.get(kind);
    if (!cached || now - cached.at > stageRatesTtlMs || now < cached.at) {
      const rates = this.stageMetrics({ kind }).then((metrics) =>
        Object.fromEntries(metrics.map((metric) => [metric.stage, metric.itemsPerSecond])),
      );
      const entry = { at: now, rates };
      cached = entry;
      this.stageRatesByKind.set(kind, entry);
      // A failed read is not kept, unless a newer one has replaced it already.
      rates.catch(() => {
        if (this.stageRatesByKind.get(kind) === entry) this.stageRatesByKind.delete(kind);
      });
    }
    return cached.rates;
  }

  /** A job's processed count over time and its ETA as of `now`; null for an unknown job. */
  async throughput(jobId: string, now = Date.now()): Promise<JobThroughput | null> {
    const state = await this.jobState(jobId);
    if (!state) return null;
    const { at, processed } = state.history;
    const points = at.map((time, index) => ({ at: time, processed: processed[index]! }));
    return { jobId, now, points, eta: estimateEta(state, now) };
  }

  /** Jobs matching the filters, most recently updated first. */
  async jobs(query: JobsQuery = {}): Promise<JobView[]> {
    const filter = parseJobsQuery(query);
    return this.select(filter, filter.limit ?? 100);
  }

  /**
   * A page of `jobs` and the cursor of the next one, null when this is the last.
   *
   * @example
   * const { jobs, nextCursor } = await views.jobsPage({ limit: 50 });
   */
  async jobsPage(query: JobsQuery = {}): Promise<{ jobs: JobView[]; nextCursor: string | null }> {
    const filter = parseJobsQuery(query);
    const limit = filter.limit ?? 100;
    // One more than the page tells whether another page follows.
    const jobs = await this.select(filter, limit + 1);
    const page = jobs.slice(0, limit);
    return { jobs: page, nextCursor: jobs.length > limit ? jobsCursor(page.at(-1)!) : null };
  }

  private async select(filter: z.infer<typeof jobsQuerySchema>, limit: number) {
    const now = filter.now ?? Date.now();
    const after = filter.after ? jobsCursorPattern.exec(filter.after)! : null;
    const afterTime = after ? Number(after[1]) : Infinity;
    const afterId = after ? after[2]! : '';
    const states = await this.allStates(filter, limit);
    const visibleMs = filter.finishedVisibleMs ?? defaultFinishedVisibleMs;
    const views: JobView[] = [];
    for (const [jobId, state] of states) {
      const { progress } = state;
      if (progress.version === 0) continue;
      if (filter.jobId !== undefined && jobId !== filter.jobId) continue;
      if (filter.project !== undefined && progress.project !== filter.project) continue;
      if (filter.kind !== undefined && progress.kind !== filter.kind) continue;
      if (filter.parentJobId !== undefined && progress.parentJobId !== filter.parentJobId) continue;
      if (filter.status && !filter.status.includes(progress.status)) continue;
      if (filter.active && !isActive(progress, now, visibleMs)) continue;
      if (filter.text !== undefined && !mentions(jobId, progress, filter.text)) continue;
      // Newest first, then by id: a page goes on below its cursor.
      const updatedAt = progress.updatedAt ?? 0;
      if (updatedAt > afterTime || (updatedAt === afterTime && jobId <= afterId)) continue;
      views.push(toView(jobId, state, now));
    }
    return sortByUpdate(views).slice(0, limit);
  }

  /** Every project's jobs counted, optionally only active jobs (or only the one `jobId`). */
  async projects(query: Pick<JobsQuery, 'active' | 'finishedVisibleMs' | 'now' | 'jobId'> = {}) {
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
      for (const run of finishedStageRuns(progress)) {
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
        aggregate.items += run.items;
        setOwn(stages, key, aggregate);
      }
    }
    // The same figures the pure stage-metrics projection gives, from stored job states.
    return stageFigures({ jobs: {}, stages });
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
    if (filter.jobId !== undefined) return this.statesOf([filter.jobId], generation);
    if (filter.parentJobId !== undefined) {
      const children = await childrenQuery(this.context.log.db, filter.parentJobId).execute();
      return this.statesOf(
        children.map((row) => row.stream_id),
        generation,
      );
    }
    // The tail first: jobs it changes are left out of the stored rows below, so a stale
    // stored row can never take a place within the limit.
    const states = await this.withTail(new Map(), generation, this.tailEvents(generation));
    if (generation) {
      let query = this.storedMainParts(generation);
      const changed = [...states.keys()];
      const exact = changed.length <= maxExcludedKeys;
      if (changed.length > 0 && exact) query = query.where('key', 'not in', changed);
      const field = (name: string) => sql<string>`value -> 'progress' ->> ${name}`;
      if (filter.project !== undefined) query = query.where(field('project'), '=', filter.project);
      if (filter.kind !== undefined) query = query.where(field('kind'), '=', filter.kind);
      if (filter.status) query = query.where(field('status'), 'in', filter.status);
      if (filter.text !== undefined) {
        const searched = sql`concat_ws(' ', key, ${field('name')}, ${field('kind')}, ${field('project')})`;
        query = query.where(sql<boolean>`${searched} ilike ${`%${escapeLike(filter.text)}%`}`);
      }
      if (filter.after) {
        const [, time, jobId] = jobsCursorPattern.exec(filter.after)!;
        const updatedAt = sql`coalesce((${field('updatedAt')})::float8, 0)`;
        query = query.where(
          sql<boolean>`(${updatedAt} < ${Number(time)} or (${updatedAt} = ${Number(time)} and key collate "C" > ${jobId}))`,
        );
      }
      if (filter.active) {
        const endedSince =
          (filter.now ?? Date.now()) - (filter.finishedVisibleMs ?? defaultFinishedVisibleMs);
        query = query.where(
          sql<boolean>`(${field('status')} in ('pending', 'running', 'paused') or (${field('endedAt')})::float8 >= ${endedSince})`,
        );
      }
      const rows = await query
        .orderBy(sql`(value -> 'progress' ->> 'updatedAt')::float8 desc nulls last`)
        // Byte order, as `sortByUpdate` compares ids, so pages meet exactly.
        .orderBy(sql`key collate "C"`)
        .$if(exact, (ordered) => ordered.limit(limit))
        .execute();
      for (const row of rows) {
        if (!states.has(row.key)) {
          states.set(row.key, jobsProjection.join(new Map([[mainPart, row.value]])));
        }
      }
    }
    return states;
  }

  /** These jobs' states, stored plus their tails; unknown ids are left out. */
  private async statesOf(
    jobIds: readonly string[],
    generation: Generation | null,
  ): Promise<Map<string, JobEtaState>> {
    const stored = new Map<string, JobEtaState>();
    if (jobIds.length === 0) return stored;
    if (generation) {
      const rows = await this.storedMainParts(generation).where('key', 'in', jobIds).execute();
      for (const row of rows)
        stored.set(row.key, jobsProjection.join(new Map([[mainPart, row.value]])));
    }
    const tailsOf = async function* (this: JobViews) {
      for (let start = 0; start < jobIds.length; start += maxStreamsPerRead) {
        const streamIds = jobIds.slice(start, start + maxStreamsPerRead);
        yield* this.tailEvents(generation, { streamIds });
      }
    };
    return this.withTail(stored, generation, tailsOf.call(this));
  }

  private storedMainParts(generation: Generation) {
    return this.context.log.db
      .selectFrom('projection_states')
      .select(['key', 'value'])
      .where('projection', '=', jobsProjection.name)
      .where('generation', '=', generation.generation)
      .where('part', '=', mainPart);
  }

  /** The log past the generation's checkpoint (all of it without one), event by event. */
  private async *tailEvents(
    generation: Generation | null,
    filter?: { streamIds: string[] },
  ): AsyncGenerator<RecordedEvent> {
    let after = generation?.cursor ?? { transactionId: 0n, position: 0n };
    for (;;) {
      const page = await this.context.log.readLog(
        { ...filter, after, limit: limits.readPage },
        { gapSafe: false },
      );
      yield* page.events;
      after = page.next;
      if (page.events.length < limits.readPage) return;
    }
  }

  /**
   * `stored` brought up to date with the tail. Each job the tail touches is read again
   * whole-or-nothing (main part and the buckets its events touch, in one statement), so its
   * parts come from one committed state, then folded with the tail.
   */
  private async withTail(
    stored: Map<string, JobEtaState>,
    generation: Generation | null,
    events: AsyncIterable<RecordedEvent>,
  ): Promise<Map<string, JobEtaState>> {
    const tail = new Map<string, RecordedEvent[]>();
    for await (const event of events) {
      const stream = tail.get(event.streamId);
      if (stream) stream.push(event);
      else tail.set(event.streamId, [event]);
    }
    if (tail.size === 0) return stored;
    const parts = new Map<string, Map<string, unknown>>();
    if (generation) {
      const needed = new Set([mainPart]);
      for (const stream of tail.values()) {
        for (const event of stream)
          for (const part of jobsProjection.partsFor(event)) needed.add(part);
      }
      const rows = await readStateParts(
        this.context.log.db,
        jobsProjection.name,
        generation.generation,
        [...tail.keys()],
        [...needed],
      );
      for (const [key, value] of rows) parts.set(key, value);
    }
    for (const [key, stream] of tail) {
      const base = parts.has(key) ? jobsProjection.join(parts.get(key)!) : jobEta.initial();
      stored.set(key, fold(jobEta, stream, base));
    }
    return stored;
  }
}

/** Beyond this many jobs in the tail, stored rows are read without a limit instead. */
const maxExcludedKeys = 5_000;

/** Streams per read of a tail; `readAll` takes at most 1,000 stream ids. */
const maxStreamsPerRead = 1_000;

/** Most children a job's status rolls up. */
const maxChildren = 10_000;

/**
 * Two columns: `children`, the ids of the job's children when `withChildren`, and `tail`,
 * a JSON array of the first page of the job's events after `afterVersion`.
 */
function childrenAndTail(
  db: Kysely<Database>,
  jobId: string,
  afterVersion: RawBuilder<number>,
  withChildren: boolean,
) {
  const tail = selectEventColumns(db.selectFrom('events'))
    .where('stream_id', '=', jobId)
    .where('version', '>', afterVersion as never)
    .orderBy('version')
    .limit(limits.readPage);
  return sql`case when ${withChildren} then array(${childrenQuery(db, jobId)}) end as children,
    (select coalesce(json_agg(t order by t.version), '[]') from (${tail}) as t) as tail`;
}

/** The ids of the jobs whose `job.started` names `jobId` as parent (served by an index). */
function childrenQuery(db: Kysely<Database>, jobId: string) {
  return db
    .selectFrom('events')
    .select('stream_id')
    .where('type', '=', 'job.started')
    .where(sql<string>`data ->> 'parentJobId'`, '=', jobId)
    .orderBy('stream_id')
    .limit(maxChildren);
}

/** Most recently updated first, then by id. */
function sortByUpdate(views: JobView[]): JobView[] {
  return views.sort(
    (a, b) =>
      (b.progress.updatedAt ?? 0) - (a.progress.updatedAt ?? 0) ||
      (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0),
  );
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

/** True when the text is in the job's id, name, kind or project, whatever the case. */
function mentions(jobId: string, progress: JobProgressState, text: string): boolean {
  const searched = [jobId, progress.name, progress.kind, progress.project].join(' ');
  return searched.toLowerCase().includes(text.toLowerCase());
}

function toView(jobId: string, state: JobEtaState, now: number): JobView {
  const { items: _items, ...progress } = state.progress;
  return { jobId, progress, eta: estimateEta(state, now) };
}

/** How long the stage rates of a kind serve status reads before they are read again. */
const stageRatesTtlMs = 30_000;
