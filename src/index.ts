export type { AppendedEvent, AppendResult, StreamAppend } from './append-statement.ts';
export { compareCursors, formatCursor, parseCursor, startCursor } from './cursor.ts';
export type { Cursor } from './cursor.ts';
export { CoalescingAppender } from './coalescing-appender.ts';
export type { AppenderBacklog, CoalescingAppenderOptions } from './coalescing-appender.ts';
export { DatabaseReadiness } from './database-readiness.ts';
export { ensureRoles, grantAppRole, regrantAppRoles, transferOwnership } from './database-roles.ts';
export type { LedgerRoles } from './database-roles.ts';
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
  StoreBusyError,
  StoreLockLostError,
} from './errors.ts';
export type { ExpectedVersion, HeadwayErrorCode, ValidationIssue } from './errors.ts';
export {
  failureRuleLimits,
  failureRulesSchema,
  loadFailureRules,
  parseFailureRules,
  readFailureRules,
} from './failure-rules.ts';
export { JobRecorder } from './job-recorder.ts';
export { jobsCursor } from './job-views.ts';
export type {
  JobRollUp,
  JobSnapshot,
  JobStatusView,
  JobThroughput,
  JobView,
  JobsQuery,
  ProjectView,
  StageMetric,
} from './job-views.ts';
export type { EventAppender, JobRecorderOptions, RecordOptions } from './job-recorder.ts';
export { Ledger } from './ledger.ts';
export type {
  ReadAllOptions,
  ReadAllPage,
  ReadStreamOptions,
  ReplayResult,
  SubscribeOptions,
  WatchOptions,
} from './ledger.ts';
export type { LedgerLocation } from './ledger-store.ts';
export type { JobListing, ListJobsOptions } from './list-jobs.ts';
export { LiveFold } from './live-fold.ts';
export { importNdjson, toExportLine } from './ndjson.ts';
export type { ExportLine, ImportResult } from './ndjson.ts';
export { defaultDataDir, openLedger } from './open-ledger.ts';
export type { OpenLedgerOptions } from './open-ledger.ts';
export { defaultTimeouts, withQueryTimeout } from './postgres-pool.ts';
export type { PostgresTimeouts } from './postgres-pool.ts';
export type { ResumeOptions, ResumePoint } from './resume-job.ts';
export { checkAccess, parseTokens } from './server/auth.ts';
export type { Scope, TokenTable } from './server/auth.ts';
export { createServer } from './server/server.ts';
export type { ServerOptions } from './server/server.ts';
export { SharedFollower } from './shared-follower.ts';
export type { SharedFollowerOptions } from './shared-follower.ts';
export type { TimelinePage, TimelineQuery } from './timeline-query.ts';
