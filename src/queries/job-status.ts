import { jobConditions, noConditions } from '../../projections/job-conditions.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import { estimateEta } from '../../projections/job-eta.ts';
import type { EtaContext, EtaEstimate } from '../../projections/job-eta.ts';
import { rollUp } from '../../projections/job-rollup.ts';
import type { JobRollUp, JobView } from '../../projections/job-rollup.ts';
import type { StageFigures } from '../../projections/stage-metrics.ts';
import { readCurrentJobsGeneration } from '../persisted/stored-jobs.ts';
import { readArchivedJobs } from '../retention/archived-jobs.ts';
import type { ArchivedMarker } from '../retention/archived-jobs.ts';
import { sortByUpdate, toView } from './job-list.ts';
import { readJobState } from './job-state.ts';
import type { JobViewsContext } from './job-state.ts';
import { readStatesOf } from './job-states.ts';

/**
 * A job's status: its progress, ETA, and its children rolled up when it has any. An archived
 * job's is its status when archived, with `archived` saying where its events went.
 */
export interface JobStatusView extends JobView {
  children: JobRollUp | null;
  /** Stalled, at risk of missing its deadline, late: as of the read's `now`. */
  conditions: JobConditions;
  archived?: ArchivedMarker;
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

/** A job's progress, ETA and roll-up of its children; null for an unknown job. */
export async function readJobStatus(
  context: JobViewsContext,
  stageRates: StageRates,
  jobId: string,
  now: number,
): Promise<JobStatusView | null> {
  // Both at once: one round trip's wait, not two. The archived view wins, since the
  // stored projection may still hold an archived job's state.
  const [archivedJobs, current] = await Promise.all([
    readArchivedJobs<JobStatusView>(context.log.db, [jobId]),
    readJobState(context, jobId, [], true),
  ]);
  const archived = archivedJobs.get(jobId);
  // Archived jobs are finished: no condition holds.
  if (archived) {
    return { ...archived.view, conditions: noConditions, archived: archived.archived };
  }
  const { state, generation, children } = current;
  if (!state) return null;
  let rolledUp: JobRollUp | null = null;
  if (children.length > 0) {
    const current = generation ?? (await readCurrentJobsGeneration(context.log.db));
    const states = await readStatesOf(context, children, current);
    const views = [...states].map(([childId, child]) => toView(childId, child, now));
    rolledUp = rollUp(sortByUpdate(views));
  }
  const view = toView(jobId, state, now);
  // Only a staged job with a stage it has not measured needs earlier jobs' rates.
  const rates = await stageRates.ratesFor(view, now);
  const eta = rates ? estimateEta(state, now, { stageRates: rates }) : view.eta;
  const conditions = jobConditions(state.progress, eta, now, context.conditionSettings);
  return { ...view, eta, children: rolledUp, conditions };
}

/** A job's processed count over time and its ETA as of `now`; null for an unknown job. */
export async function readJobThroughput(
  context: JobViewsContext,
  jobId: string,
  now: number,
): Promise<JobThroughput | null> {
  const { state } = await readJobState(context, jobId, [], false);
  if (!state) return null;
  const { at, processed } = state.history;
  const points = at.map((time, index) => ({ at: time, processed: processed[index]! }));
  return { jobId, now, points, eta: estimateEta(state, now) };
}

/** How long the stage rates of a kind serve status reads before they are read again. */
const stageRatesTtlMs = 30_000;

/**
 * Stage rates by kind, from finished jobs' stage metrics: a status read looks them up at
 * most once per `stageRatesTtlMs` per kind.
 */
export class StageRates {
  private readonly byKind = new Map<
    string,
    { at: number; rates: Promise<Record<string, number | null>> }
  >();

  constructor(private readonly metricsOf: (kind: string) => Promise<StageFigures[]>) {}

  /**
   * The stage rates of earlier jobs of a job's kind, when its ETA guessed a stage from the
   * weights or could not tell; undefined otherwise.
   */
  async ratesFor(view: JobView, now: number): Promise<EtaContext['stageRates']> {
    const { progress, eta } = view;
    if (progress.declaredStages.length === 0 || progress.kind === null) return undefined;
    const guessed = eta.stages.some(
      (stage) => stage.basis === 'weights' || stage.basis === 'unknown',
    );
    if (!guessed) return undefined;
    const kind = progress.kind;
    let cached = this.byKind.get(kind);
    if (!cached || now - cached.at > stageRatesTtlMs || now < cached.at) {
      const rates = this.metricsOf(kind).then((metrics) =>
        Object.fromEntries(metrics.map((metric) => [metric.stage, metric.itemsPerSecond])),
      );
      const entry = { at: now, rates };
      cached = entry;
      this.byKind.set(kind, entry);
      // A failed read is not kept, unless a newer one has replaced it already.
      rates.catch(() => {
        if (this.byKind.get(kind) === entry) this.byKind.delete(kind);
      });
    }
    return cached.rates;
  }
}
