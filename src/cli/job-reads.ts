import type { Command } from 'commander';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import type { EtaEstimate } from '../../projections/job-eta.ts';
import { exportFailures, jobFailures } from '../../projections/job-failures.ts';
import type { FailureReport } from '../../projections/job-failures.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import type { JobSnapshot } from '../../projections/job-rollup.ts';
import type { JobView } from '../queries/job-list.ts';
import type { JobStatus } from '../../projections/job-status.ts';
import type { SummaryFigures } from '../../projections/job-summary.ts';
import type { HeadwayClient, TimelineFilter } from '../client/index.ts';
import type { Ledger } from '../ledger.ts';
import type { TimelinePage } from '../queries/timeline-query.ts';
import { withSource } from './remote.ts';
import type { ArchivedMarker } from '../retention/archived-jobs.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import type { ConditionName } from '../../schema/events.ts';

// The reads behind `jobs`, `status`, `failures` and `timeline`, from a store or a server:
// the same data either way, so each command formats it in one place.

/** Which jobs `headway jobs` lists. */
export interface JobListFilter {
  limit: number;
  project?: string;
  kind?: string;
  status?: JobStatus[];
  /** Only stalled jobs. */
  stalled?: boolean;
  /** Only jobs in one of these conditions. */
  condition?: ConditionName[];
}

/** What `headway status` prints: `GET /v1/jobs/:id`'s progress and ETA, and `/summary`. */
export interface StatusReport {
  progress: JobSnapshot;
  summary: { jobId: string } & SummaryFigures;
  eta: EtaEstimate;
  /** Stalled, at risk, late, as the server (or the store opened here) judged them now. */
  conditions?: JobConditions;
  /** Where retention put the job's events, when it archived them. */
  archived?: ArchivedMarker;
}

/** The reads of the job commands; null answers an unknown job. */
export interface JobReads {
  /** The jobs `GET /v1/jobs` lists, most recently updated first. */
  jobs(filter: JobListFilter): Promise<JobView[]>;
  status(jobId: string): Promise<StatusReport | null>;
  failures(jobId: string): Promise<FailureReport | null>;
  /** One job's events (null when the job is unknown), or every job's without `jobId`. */
  timeline(filter: TimelineFilter): Promise<TimelinePage | null>;
}

/** Runs `action` with the reads of the ledger or server the command names (see `withSource`). */
export function withJobReads<T>(
  command: Command,
  action: (reads: JobReads) => Promise<T>,
): Promise<T> {
  return withSource(command, (source) =>
    action(source.kind === 'ledger' ? ledgerReads(source.ledger) : serverReads(source.client)),
  );
}

/** The reads answered by a store opened here, as the server's routes answer them. */
export function ledgerReads(ledger: Ledger): JobReads {
  const known = async (jobId: string) => (await ledger.streamVersion(jobId)) > 0;
  return {
    jobs: (filter) => ledger.jobs(filter),
    async status(jobId) {
      const [view, summary] = await Promise.all([ledger.status(jobId), ledger.summary(jobId)]);
      if (!view || !summary) return null;
      return withArchived(view, {
        progress: inOneKeyOrder(view.progress),
        summary: { jobId, ...summary },
        eta: view.eta,
      });
    },
    async failures(jobId) {
      if (!(await known(jobId))) return null;
      const state = await ledger.project(jobId, jobFailures);
      return exportFailures(state, jobId, new Date().toISOString());
    },
    async timeline({ jobId, types, ...rest }) {
      if (jobId !== undefined && !(await known(jobId))) return null;
      return ledger.timeline({
        ...rest,
        ...(jobId === undefined ? {} : { jobId }),
        ...(types === undefined ? {} : { types: [...types] }),
      });
    },
  };
}

/** The same reads through a Headway server's API. */
export function serverReads(client: HeadwayClient): JobReads {
  return {
    jobs: async (filter) => (await client.jobs(filter)).jobs,
    async status(jobId) {
      const [view, summary] = await Promise.all([client.status(jobId), client.summary(jobId)]);
      if (!view || !summary) return null;
      const { progress, eta } = view as JobView;
      return withArchived(view as JobView, { progress: inOneKeyOrder(progress), summary, eta });
    },
    failures: (jobId) => client.failures(jobId),
    async timeline(filter) {
      const page = await client.timeline(filter);
      if (!page) return null;
      // Without the description the server adds, each event is as the store reads it.
      const events: RecordedEvent[] = page.events.map(({ summary: _, ...event }) => event);
      return { events, nextCursor: page.nextCursor };
    },
  };
}

/**
 * A job's progress with its keys in one order whatever it was read from: as the reducer
 * declares them, then (in nested objects the reducer builds as it goes, and in maps) sorted.
 * A state stored as jsonb comes back with its keys reordered, and a fold keeps the order
 * it met them in, so without this the same progress would print differently.
 */
export function inOneKeyOrder(progress: JobSnapshot): JobSnapshot {
  return ordered(progress, jobProgress.initial()) as JobSnapshot;
}

function ordered(value: unknown, template: unknown): unknown {
  if (Array.isArray(value)) return value.map((element) => ordered(element, undefined));
  if (!isPlainObject(value)) return value;
  const shape = isPlainObject(template) ? template : {};
  const known = Object.keys(shape).filter((key) => Object.hasOwn(value, key));
  const rest = Object.keys(value)
    .filter((key) => !Object.hasOwn(shape, key))
    .sort();
  // fromEntries makes each key an own property, "__proto__" too.
  return Object.fromEntries(
    [...known, ...rest].map((key) => [key, ordered(value[key], shape[key])]),
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The report, with the view's conditions, and its archived marker when it has one. */
function withArchived(
  view: JobView & { conditions?: JobConditions; archived?: ArchivedMarker },
  report: StatusReport,
): StatusReport {
  return {
    ...report,
    ...(view.conditions ? { conditions: view.conditions } : {}),
    ...(view.archived ? { archived: view.archived } : {}),
  };
}
