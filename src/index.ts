/**
 * The library: open a ledger, append, read, fold and watch. It loads no HTTP framework;
 * the server is `headway/server`, the HTTP client `headway/client`.
 */
export type { AppendedEvent, AppendResult, StreamAppend } from './append/prepare-streams.ts';
export {
  compareLogCursors,
  formatJobsPageCursor,
  formatLogCursor,
  formatTimelineCursor,
  logStart,
  parseJobsPageCursor,
  parseLogCursor,
} from './cursors.ts';
export type { JobsPageCursor, LogCursor } from './cursors.ts';
export { CoalescingAppender } from './append/coalescing-appender.ts';
export type { AppenderBacklog, CoalescingAppenderOptions } from './append/coalescing-appender.ts';
export { DatabaseReadiness } from './store/database-readiness.ts';
export {
  ensureRoles,
  grantAppRole,
  regrantAppRoles,
  transferOwnership,
} from './store/database-roles.ts';
export type { LedgerRoles } from './store/database-roles.ts';
export {
  AppenderClosedError,
  ConcurrencyError,
  DatabaseUnavailableError,
  EventTooLargeError,
  HeadwayError,
  IdempotencyConflictError,
  InvalidEventError,
  InvalidInputError,
  JobFinishedError,
  JobNotStartedError,
  NotFoundError,
  RunnerFencedError,
  StoreBusyError,
  StoreLockLostError,
} from './errors.ts';
export type {
  ClientErrorCode,
  ErrorCode,
  ExpectedVersion,
  HeadwayErrorCode,
  HttpErrorCode,
  ValidationIssue,
} from './errors.ts';
export {
  failureRuleLimits,
  failureRulesSchema,
  loadFailureRules,
  parseFailureRules,
  readFailureRules,
} from './append/failure-rules.ts';
export { JobRecorder } from './append/job-recorder.ts';
export type {
  JobRollUp,
  JobSnapshot,
  JobStatusView,
  JobThroughput,
  JobView,
  JobsQuery,
  ProjectView,
  StageMetric,
} from './queries/job-views.ts';
export type { EventAppender, JobRecorderOptions, RecordOptions } from './append/job-recorder.ts';
export { Ledger } from './ledger.ts';
export type {
  ReadAllOptions,
  ReadAllPage,
  ReadStreamOptions,
  ReplayResult,
  SubscribeOptions,
  WatchOptions,
} from './ledger.ts';
export type { LedgerLocation } from './store/ledger-store.ts';
export { importNdjson, toExportLine } from './append/ndjson.ts';
export type { ExportLine, ImportResult } from './append/ndjson.ts';
export { defaultDataDir, openLedger } from './open-ledger.ts';
export { parseRetentionAge } from './retention/retention-age.ts';
export { runRetention } from './retention/run-retention.ts';
export type {
  RetentionOptions,
  RetentionPartition,
  RetentionPorts,
  RetentionResult,
} from './retention/run-retention.ts';
export type { ArchivedMarker } from './retention/archived-jobs.ts';
export type { OpenLedgerOptions } from './open-ledger.ts';
export { defaultTimeouts, withQueryTimeout } from './store/postgres-pool.ts';
export type { PostgresTimeouts } from './store/postgres-pool.ts';
export type { ResumeOptions, ResumePoint } from './append/resume-job.ts';
export { SharedFollower } from './live/shared-follower.ts';
export type { SharedFollowerOptions } from './live/shared-follower.ts';
export type { TimelinePage, TimelineQuery } from './queries/timeline-query.ts';
export { ConditionWatcher } from './alerts/condition-watcher.ts';
export type { ConditionWatcherOptions, SweepReport } from './alerts/condition-watcher.ts';
export { LedgerWebhooks } from './webhooks/ledger-webhooks.ts';
export { WebhookDeliverer } from './webhooks/webhook-deliverer.ts';
export type { WebhookDelivererOptions } from './webhooks/webhook-deliverer.ts';
export type {
  Delivery,
  DeliveryAttempt,
  DeliveryPolicy,
  WebhookPayload,
} from './webhooks/webhook-deliveries.ts';
export { webhookConditions } from './webhooks/webhook-subscriptions.ts';
export type {
  Webhook,
  WebhookCondition,
  WebhookInput,
  WebhookTargetPolicy,
} from './webhooks/webhook-subscriptions.ts';
export {
  signatureHeader,
  signWebhook,
  verifyWebhookSignature,
} from './webhooks/webhook-signature.ts';
