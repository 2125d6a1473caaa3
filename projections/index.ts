export { combineProjections } from './combine.ts';
export type { CombinedState } from './combine.ts';
export {
  classifyFailure,
  classifyRecordedError,
  defaultClassificationRules,
  describeError,
} from './failure-classification.ts';
export type { Classification, ClassificationRule, FailureFacts } from './failure-classification.ts';
export { emptyHistogram, mean, quantile, recordValue } from './histogram.ts';
export type { Histogram } from './histogram.ts';
export { estimateEta, historyLimit, jobEta } from './job-eta.ts';
export type { EtaEstimate, JobEtaState, ThroughputHistory } from './job-eta.ts';
export {
  exportFailures,
  failureGroups,
  groupItemLimit,
  jobFailures,
  normaliseMessage,
  retryCandidates,
} from './job-failures.ts';
export type {
  FailureGroup,
  FailureReport,
  JobFailuresState,
  RetryCandidate,
} from './job-failures.ts';
export {
  allItems,
  comparePlanOrder,
  inFlightItems,
  isItemDone,
  itemBreakdown,
  itemRecord,
  jobItems,
  pendingItems,
  stuckItems,
} from './job-items.ts';
export type {
  GroupCounts,
  ItemBreakdown,
  ItemEntry,
  ItemRecord,
  ItemStatus,
  JobItemsState,
} from './job-items.ts';
export { jobProgress } from './job-progress.ts';
export type { ItemCounts, JobProgressState, JobStatus, StageRun } from './job-progress.ts';
export { formatSummary, jobSummary, summarize } from './job-summary.ts';
export type { JobSummaryState, SummaryFigures } from './job-summary.ts';
export { describeEvent, timelineEntry } from './job-timeline.ts';
export type { TimelineEntry } from './job-timeline.ts';
export { accumulatorFor, fold } from './projection.ts';
export type { Accumulator, Projection } from './projection.ts';
export { perStream } from './per-stream.ts';
export type { PerStreamState } from './per-stream.ts';
export { projectOverview, projects } from './project-overview.ts';
export type { JobOverview, ProjectOverviewState, ProjectSummary } from './project-overview.ts';
export { stageFigures, stageMetrics } from './stage-metrics.ts';
export type { StageAggregate, StageFigures, StageMetricsState } from './stage-metrics.ts';
