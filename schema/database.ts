import type { ColumnType, Generated } from 'kysely';

/** Row of the `events` table. Drivers return int8 as bigint (PGlite) or string (pg). */
export interface EventsTable {
  position: ColumnType<bigint | string, never, never>;
  transaction_id: ColumnType<string, never, never>;
  stream_id: string;
  version: ColumnType<bigint | string | number, number, never>;
  event_id: string;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: unknown;
  occurred_at: ColumnType<Date, Date | string, never>;
  recorded_at: ColumnType<Date, never, never>;
  /** The month its stream started: the partition key (migration 0008). */
  stream_month: ColumnType<Date | string, never, never>;
}

/** Row of the `streams` table: one per job, holding its head version. */
export interface StreamsTable {
  stream_id: string;
  version: ColumnType<bigint | string | number, number, number>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
  /** The month of its first append, which names its events' partition; never changes. */
  stream_month: ColumnType<Date | string, never, never>;
  /** When retention archived the job; it takes no more events after. */
  archived_at: ColumnType<Date | null, never, Date>;
}

/** Row of `archives`: one NDJSON archive of a month of events, written before its drop. */
export interface ArchivesTable {
  archive_id: ColumnType<bigint | string, never, never>;
  month: ColumnType<Date | string, string, never>;
  partition: string;
  file: string;
  events: ColumnType<bigint | string | number, number, never>;
  jobs: number;
  sha256: string;
  archived_at: Generated<Date>;
}

/** Row of `archived_jobs`: an archived job's frozen status view, kept across rebuilds. */
export interface ArchivedJobsTable {
  job_id: string;
  archive_id: ColumnType<bigint | string, string, never>;
  project: string | null;
  kind: string | null;
  name: string | null;
  status: string;
  parent_job_id: string | null;
  updated_at: number | null;
  events: ColumnType<bigint | string | number, number, never>;
  view: unknown;
  summary: unknown;
}

/** Row of `projection_checkpoints`: one generation of a persisted projection. */
export interface ProjectionCheckpointsTable {
  projection: string;
  generation: number;
  code_version: number;
  status: 'building' | 'active';
  transaction_id: ColumnType<string, string | undefined, string>;
  position: ColumnType<bigint | string, string | undefined, string>;
  events: ColumnType<bigint | string, string | undefined, string>;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

/** Row of `projection_states`: one part of one key's state in one generation. */
export interface ProjectionStatesTable {
  projection: string;
  generation: number;
  key: string;
  part: string;
  value: unknown;
}

/** Row of `webhooks`: one subscription, with its checkpoint in the log. */
export interface WebhooksTable {
  webhook_id: string;
  url: string;
  secret: string;
  project: string | null;
  kind: string | null;
  job_id: string | null;
  conditions: string[];
  description: string | null;
  created_at: Generated<Date>;
  removed_at: ColumnType<Date | null, never, Date>;
  transaction_id: ColumnType<string, string, string>;
  position: ColumnType<bigint | string, string, string>;
}

/** Row of `webhook_deliveries`: one notification to one subscription, and its attempts. */
export interface WebhookDeliveriesTable {
  delivery_id: string;
  webhook_id: string;
  job_id: string;
  condition: string;
  event_position: ColumnType<bigint | string, string, never>;
  payload: unknown;
  status: ColumnType<'pending' | 'delivered' | 'dead', 'pending' | undefined, 'delivered' | 'dead'>;
  attempts: ColumnType<number, never, number>;
  attempt_log: ColumnType<unknown, never, string>;
  next_attempt_at: ColumnType<Date, Date | undefined, Date>;
  created_at: Generated<Date>;
  delivered_at: ColumnType<Date | null, never, Date>;
}

/** The ledger's tables as Kysely sees them. */
export interface Database {
  events: EventsTable;
  streams: StreamsTable;
  projection_checkpoints: ProjectionCheckpointsTable;
  projection_states: ProjectionStatesTable;
  archives: ArchivesTable;
  archived_jobs: ArchivedJobsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
}
