import { sql } from 'kysely';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { JobView } from '../../projections/job-rollup.ts';
import type { JobsPageCursor } from '../cursors.ts';
import { escapeLike } from '../store/escape-like.ts';
import type { SummaryFigures } from '../../projections/job-summary.ts';

// The only SQL over `archived_jobs` and `archives` besides retention's own writes.

type Db = Kysely<Database> | Transaction<Database>;

/** Where an archived job went: what reads of it say besides its frozen view. */
export interface ArchivedMarker {
  /** When retention archived it (ISO 8601). */
  archivedAt: string;
  /** The month of its partition, `YYYY-MM`. */
  month: string;
  /** The NDJSON archive holding its events, as retention wrote its path. */
  file: string;
  /** The archive's sha256. */
  sha256: string;
}

/** An archived job as reads return it: its view when archived, and where it went. */
export interface ArchivedJob<V extends JobView = JobView> {
  view: V;
  archived: ArchivedMarker;
}

interface ArchivedRow {
  job_id: string;
  view: unknown;
  archived_at: Date | string;
  month: string;
  file: string;
  sha256: string;
}

function selectArchived(db: Db) {
  return db
    .selectFrom('archived_jobs as j')
    .innerJoin('archives as a', 'a.archive_id', 'j.archive_id')
    .select([
      'j.job_id',
      'j.view',
      'a.archived_at',
      sql<string>`to_char(a.month, 'YYYY-MM')`.as('month'),
      'a.file',
      'a.sha256',
    ]);
}

function toArchived<V extends JobView>(row: ArchivedRow): ArchivedJob<V> {
  const view = (typeof row.view === 'string' ? JSON.parse(row.view) : row.view) as V;
  return {
    view,
    archived: {
      archivedAt: new Date(row.archived_at).toISOString(),
      month: row.month,
      file: row.file,
      sha256: row.sha256,
    },
  };
}

/** These jobs' archived views, by job id; jobs not archived are absent. */
export async function readArchivedJobs<V extends JobView = JobView>(
  db: Db,
  jobIds: readonly string[],
): Promise<Map<string, ArchivedJob<V>>> {
  if (jobIds.length === 0) return new Map();
  const rows = await selectArchived(db)
    .where('j.job_id', 'in', [...new Set(jobIds)])
    .execute();
  return new Map(rows.map((row) => [row.job_id, toArchived<V>(row)]));
}

/** What `selectArchivedJobs` filters on in SQL; the caller filters the views again. */
export interface ArchivedJobsFilter {
  project?: string;
  kind?: string;
  statuses?: readonly string[];
  parentJobId?: string;
  text?: string;
  after?: JobsPageCursor;
  limit: number;
}

/** Archived jobs matching the filter, most recently updated first, then by id in byte order. */
export async function selectArchivedJobs(
  db: Db,
  filter: ArchivedJobsFilter,
): Promise<ArchivedJob[]> {
  let query = selectArchived(db);
  if (filter.project !== undefined) query = query.where('j.project', '=', filter.project);
  if (filter.kind !== undefined) query = query.where('j.kind', '=', filter.kind);
  if (filter.statuses) query = query.where('j.status', 'in', [...filter.statuses]);
  if (filter.parentJobId !== undefined)
    query = query.where('j.parent_job_id', '=', filter.parentJobId);
  if (filter.text !== undefined) {
    const searched = sql`concat_ws(' ', j.job_id, j.name, j.kind, j.project)`;
    query = query.where(sql<boolean>`${searched} ilike ${`%${escapeLike(filter.text)}%`}`);
  }
  if (filter.after) {
    const { updatedAt: time, jobId } = filter.after;
    query = query.where(
      sql<boolean>`(coalesce(j.updated_at, 0) < ${time} or (coalesce(j.updated_at, 0) = ${time} and j.job_id collate "C" > ${jobId}))`,
    );
  }
  const rows = await query
    .orderBy(sql`j.updated_at desc nulls last`)
    .orderBy(sql`j.job_id collate "C"`)
    .limit(filter.limit)
    .execute();
  return rows.map((row) => toArchived(row));
}

/** One archive as retention records it, with its jobs' frozen views. */
export interface ArchiveRecord {
  month: string;
  partition: string;
  file: string;
  events: number;
  sha256: string;
  jobs: { jobId: string; events: number; view: JobView; summary: SummaryFigures }[];
}

/** Records an archive and its jobs' views; returns the archive's id. */
export async function recordArchive(db: Db, archive: ArchiveRecord): Promise<string> {
  const { archive_id } = await db
    .insertInto('archives')
    .values({
      month: `${archive.month}-01`,
      partition: archive.partition,
      file: archive.file,
      events: archive.events,
      jobs: archive.jobs.length,
      sha256: archive.sha256,
    })
    .returning('archive_id')
    .executeTakeFirstOrThrow();
  const archiveId = String(archive_id);
  for (let start = 0; start < archive.jobs.length; start += 500) {
    await db
      .insertInto('archived_jobs')
      .values(
        archive.jobs.slice(start, start + 500).map(({ jobId, events, view, summary }) => ({
          job_id: jobId,
          archive_id: archiveId,
          project: view.progress.project,
          kind: view.progress.kind,
          name: view.progress.name,
          status: view.progress.status,
          parent_job_id: view.progress.parentJobId,
          updated_at: view.progress.updatedAt,
          events,
          view: JSON.stringify(view),
          summary: JSON.stringify(summary),
        })),
      )
      .execute();
  }
  return archiveId;
}

/** The summary figures retention kept of an archived job; undefined for any other job. */
export async function readArchivedSummary(
  db: Db,
  jobId: string,
): Promise<SummaryFigures | undefined> {
  const row = await db
    .selectFrom('archived_jobs')
    .select('summary')
    .where('job_id', '=', jobId)
    .executeTakeFirst();
  return row?.summary as SummaryFigures | undefined;
}
