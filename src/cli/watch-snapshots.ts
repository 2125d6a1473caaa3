import { asyncScheduler, concat, concatMap, defer, filter, from, throttleTime } from 'rxjs';
import type { Observable } from 'rxjs';
import { estimateEta } from '../../projections/job-eta.ts';
import type { EtaEstimate, JobEtaState } from '../../projections/job-eta.ts';
import type { HeadwayClient } from '../client/index.ts';
import { NotFoundError } from '../errors.ts';
import type { JobSnapshot, JobStatusView } from '../queries/job-views.ts';

// Where `headway watch` gets what it draws: a local store's fold, or a server's status.

/** What the views draw: a job's progress and its ETA as of any moment. */
export interface Snapshot {
  progress: JobSnapshot;
  estimate(now: number): EtaEstimate;
}

/** A snapshot of a job folded here, from its ETA state. */
export function localSnapshot(state: JobEtaState): Snapshot {
  return { progress: state.progress, estimate: (now) => estimateEta(state, now) };
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
    return { progress: view.progress, estimate: (now) => shiftEta(view.eta, now - fetchedAt) };
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
