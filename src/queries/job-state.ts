import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';
import type { Database } from '../../schema/database.ts';
import { limits } from '../../schema/limits.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { jobEta } from '../../projections/job-eta.ts';
import type { JobEtaState } from '../../projections/job-eta.ts';
import { fold } from '../../projections/projection.ts';
import type { LogReader } from '../store/log-reads.ts';
import { selectEventColumns } from '../store/recorded-row.ts';
import type { EventRow } from '../store/recorded-row.ts';
import { jobsProjection, mainPart } from '../persisted/persisted-projection.ts';
import { readItemSubset } from '../persisted/projection-tables.ts';
import { readJobHead } from '../persisted/stored-jobs.ts';
import type { Generation } from '../persisted/projection-tables.ts';
import type { ConditionSettings } from '../../projections/job-conditions.ts';
import type { FoldCache } from '../fold-cache.ts';

/** What the views need of the ledger: its log reader, and the states its runner holds. */
export interface JobViewsContext {
  log: LogReader;
  /** A job's whole state, items included, as a runner in this process holds it, if any. */
  cachedState(jobId: string): JobEtaState | undefined;
  /** How conditions (stalled, at risk, late, failure rate) are judged where a job sets none. */
  conditionSettings: ConditionSettings;
  /**
   * Whole states that reads folded past the runner's, so the next read of a job folds only
   * what was appended since the last read, however far the runner lags.
   */
  readFolds?: FoldCache;
}

/** One job's state, its children's ids, and the generation its stored part came from. */
export interface JobStateAndChildren {
  state: JobEtaState | null;
  /** Absent when the state came from the runner's cache. */
  generation?: Generation | null;
  children: string[];
}

/** Most children a job's status rolls up. */
const maxChildren = 10_000;

/**
 * One job's state: stored, plus the events of its stream after it; null if unknown. Its
 * item table holds only `itemIds` and the items the tail touches. With `withChildren`, its
 * children's ids too, read in the same snapshot: the runner commits between any two reads,
 * and items of a newer state must not meet an older main part.
 */
export async function readJobState(
  context: JobViewsContext,
  jobId: string,
  itemIds: readonly string[],
  withChildren: boolean,
): Promise<JobStateAndChildren> {
  const cached = newestWholeState(context, jobId);
  if (cached) return foldPastCached(context, jobId, cached, withChildren);
  return context.log.db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const head = await readJobHead<{ children: string[] | null; tail: EventRow[] }>(
        trx,
        jobId,
        (storedVersion) => childrenAndTail(trx, jobId, storedVersion, withChildren),
      );
      const { generation, main } = head;
      const firstPage = toEvents(context, head.columns.tail);
      const stored = generation && main ? { generation, main } : null;
      const state = await foldTail(context, trx, jobId, itemIds, stored, firstPage);
      return { state, generation, children: head.columns.children ?? [] };
    });
}

/** The newer of the runner's state of a job and the last one a read folded, if any. */
function newestWholeState(context: JobViewsContext, jobId: string): JobEtaState | undefined {
  const runner = context.cachedState(jobId);
  const read = context.readFolds?.get(jobEta, jobId)?.state;
  if (!read) return runner;
  return runner && runner.progress.version >= read.progress.version ? runner : read;
}

/** A whole state, items included: one statement for what came after it. */
async function foldPastCached(
  context: JobViewsContext,
  jobId: string,
  cached: JobEtaState,
  withChildren: boolean,
): Promise<JobStateAndChildren> {
  const { db } = context.log;
  const after = sql<number>`${cached.progress.version}::int`;
  const { rows } = await sql<{ children: string[] | null; tail: EventRow[] }>`
    select ${childrenAndTail(db, jobId, after, withChildren)}
  `.execute(db);
  const { children, tail } = rows[0]!;
  let state = fold(jobEta, toEvents(context, tail), cached);
  while (tail.length === limits.readPage) {
    const version = state.progress.version + 1;
    const page = await context.log.readStreamTail(db, jobId, version, limits.readPage);
    state = fold(jobEta, page, state);
    if (page.length < limits.readPage) break;
  }
  // Folded from a whole state, so whole too: a later read may start from it.
  if (state.progress.version > cached.progress.version) {
    context.readFolds?.set(jobEta, jobId, { state, version: state.progress.version });
  }
  return { state, children: children ?? [] };
}

/**
 * Folds a job's stream past its stored state (from the start without one), starting
 * with its first page, loading just the items the tail touches.
 */
async function foldTail(
  context: JobViewsContext,
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
        : await context.log.readStreamTail(db, jobId, state.progress.version + 1, limits.readPage);
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

function toEvents(context: JobViewsContext, rows: EventRow[]): RecordedEvent[] {
  return rows.map((row) => context.log.toEvent(row));
}

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
export function childrenQuery(db: Kysely<Database>, jobId: string) {
  return db
    .selectFrom('events')
    .select('stream_id')
    .where('type', '=', 'job.started')
    .where(sql<string>`data ->> 'parentJobId'`, '=', jobId)
    .orderBy('stream_id')
    .limit(maxChildren);
}
