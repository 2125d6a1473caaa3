import { asyncScheduler, concat, concatMap, defer, filter, from, throttleTime } from 'rxjs';
import type { Observable } from 'rxjs';
import { estimateEta } from '../../projections/job-eta.ts';
import type { EtaEstimate, JobEtaState } from '../../projections/job-eta.ts';
import { jobConditions } from '../../projections/job-conditions.ts';
import type { ConditionSettings, JobConditions } from '../../projections/job-conditions.ts';
import type { HeadwayClient } from '../client/index.ts';
import { NotFoundError } from '../errors.ts';
import type { JobSnapshot, JobStatusView } from '../queries/job-views.ts';

// Where `headway watch` gets what it draws: a local store's fold, or a server's status.

/** What the views draw: a job's progress, its ETA and its conditions as of any moment. */
export interface Snapshot {
  progress: JobSnapshot;
  estimate(now: number): EtaEstimate;
  conditions(now: number): JobConditions;
}

/** A snapshot of a job folded here, from its ETA state, judged with `settings`. */
export function localSnapshot(state: JobEtaState, settings: ConditionSettings): Snapshot {
  const estimate = (now: number) => estimateEta(state, now);
  return {
    progress: state.progress,
    estimate,
    conditions: (now) => jobConditions(state.progress, estimate(now), now, settings),
  };
}

/**
 * A remote job's snapshots: its status now, then again after changes its event stream
 * announces, at most one fetch per interval. The ETA counts down between fetches.
 */
export function remoteSnapshots(
  client: HeadwayClient,
  jobId: string,
  interval: number,
  signal: AbortSignal,
): Observable<Snapshot> {
  const fetchStatus = async (): Promise<Snapshot> => {
    const view = (await client.status(jobId)) as JobStatusView | null;
    if (!view) throw new NotFoundError(`Job '${jobId}'`);
    const fetchedAt = Date.now();
    return {
      progress: view.progress,
      estimate: (now) => shiftEta(view.eta, now - fetchedAt),
      // As the server judged them; a stall's silence goes on growing until the next fetch.
      conditions: (now) => {
        const { stalled } = view.conditions;
        return stalled
          ? { ...view.conditions, stalled: { ...stalled, silentMs: now - stalled.lastEventAt } }
          : view.conditions;
      },
    };
  };
  return concat(
    defer(fetchStatus),
    from(client.watch(jobId, { signal })).pipe(
      filter((message) => message.event === 'event'),
      throttleTime(interval, asyncScheduler, { leading: true, trailing: true }),
      concatMap(fetchStatus),
    ),
  );
}

/** An ETA as it stands `elapsedMs` after it was made. */
function shiftEta(estimate: EtaEstimate, elapsedMs: number): EtaEstimate {
  const less = (value: number) => Math.max(0, value - elapsedMs);
  return {
    ...estimate,
    etaMs: estimate.etaMs === null ? null : less(estimate.etaMs),
    range: estimate.range && {
      lowMs: less(estimate.range.lowMs),
      highMs: less(estimate.range.highMs),
    },
  };
}
