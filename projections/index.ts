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
export { defaultConditionSettings, jobConditions, stallThreshold } from './job-conditions.ts';
export type {
  AtRiskCondition,
  ConditionFacts,
  ConditionSettings,
  JobConditions,
  LateCondition,
  StallBasis,
  StalledCondition,
  StallThreshold,
} from './job-conditions.ts';
export { estimateEta, historyLimit, jobEta } from './job-eta.ts';
export type {
  EtaBasis,
  EtaContext,
  EtaEstimate,
  JobEtaState,
  RateWindow,
  StageEstimate,
  ThroughputHistory,
} from './job-eta.ts';
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
export { stageProgress } from './job-stages.ts';
export type { ItemPosition, StageProgress, StageTally } from './job-stages.ts';
export { rollUp } from './job-rollup.ts';
export type { JobRollUp, JobSnapshot, JobView } from './job-rollup.ts';
export { jobProgress } from './job-progress.ts';
export {
  defaultFinishedVisibleMs,
  isActive,
  isFinished,
  jobStatuses,
  unfinishedStatuses,
} from './job-status.ts';
export type { ItemCounts, JobProgressState, JobStatus, StageRun } from './job-progress.ts';
export { formatSummary, jobSummary, summarize } from './job-summary.ts';
export type { JobSummaryState, SummaryFigures } from './job-summary.ts';
export { describeEvent, timelineEntry } from './job-timeline.ts';
export type { TimelineEntry } from './job-timeline.ts';
export { accumulatorFor, fold } from './projection.ts';
export type { Accumulator, Projection } from './projection.ts';
export { perStream } from './per-stream.ts';
export type { PerStreamState } from './per-stream.ts';
export {
  groupByProject,
  jobOverviewOf,
  jobOverviews,
  projectOverviewOf,
  projectSummaries,
} from './project-overview.ts';
export type {
  JobOverview,
  JobOverviewsState,
  JobTally,
  ProjectSummary,
  ProjectTotals,
} from './project-overview.ts';
export { finishedStageRuns, stageFigures, stageMetrics, stageMetricsOf } from './stage-metrics.ts';
export type {
  FinishedStageRun,
  StageAggregate,
  StageFigures,
  StageMetricsState,
} from './stage-metrics.ts';
