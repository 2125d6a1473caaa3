import { combineProjections } from '../projections/combine.ts';
import { jobFailures } from '../projections/job-failures.ts';
import { jobSummary } from '../projections/job-summary.ts';
import { perStream } from '../projections/per-stream.ts';

/** What the replay workload folds the log into: summary (with progress) and failures per job. */
export function replayProjection() {
  return perStream(combineProjections({ summary: jobSummary, failures: jobFailures }));
}
