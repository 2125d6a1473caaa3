import * as z from 'zod';
import {
  conditionNames,
  eventDataSchemas,
  eventMetadata,
  storableText,
} from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import { jobStatuses } from '../../projections/job-status.ts';
import { logCursorText } from '../cursors.ts';

/** Request schemas of the HTTP API: they validate requests and make the OpenAPI document. */

const id = storableText(limits.idLength);
const name = storableText(limits.nameLength);
/** Text searched for in the log. */
const searchText = storableText(200);
const isoTime = z.iso.datetime({ offset: true });

export const jobParams = z.strictObject({ id: id.describe('The job id') });

export const itemParams = z.strictObject({
  id: id.describe('The job id'),
  itemId: id.describe('The item id'),
});

export const projectParams = z.strictObject({
  project: name.describe("A project name, or 'all' for every project"),
});

/** `POST /v1/jobs`: the facts of `job.started`, and the envelope of that event. */
export const startJobBody = eventDataSchemas['job.started'].extend({
  jobId: id.optional().describe('The job id; generated when absent'),
  eventId: z.uuid().optional().describe('Idempotency key of the job.started event'),
  occurredAt: isoTime.optional(),
  metadata: eventMetadata.optional(),
});

/** One event as a producer sends it; the ledger checks `data` against the catalogue. */
const eventInput = z
  .object({
    type: name.describe('A catalogue type (item.completed, stage.started, …) or x.<custom>'),
    data: z.unknown().describe("The type's data, as the event catalogue defines it"),
    eventId: z.uuid().optional().describe('Idempotency key; reuse it when retrying'),
    occurredAt: isoTime.optional(),
    metadata: eventMetadata.optional(),
    // The same bound as the append path's envelope, so both refuse the same.
    schemaVersion: z.number().int().min(1).max(limits.schemaVersion).optional(),
  })
  .loose();

const versionModes = ['any', 'no_stream', 'stream_exists'] as const;

/** What `expectedVersion` takes, and what it got, for every way it can be wrong. */
const badExpectedVersion = (issue: { input?: unknown }) => {
  const input = issue.input === undefined ? 'nothing' : JSON.stringify(issue.input).slice(0, 100);
  return `expected a version (an integer >= 0) or one of ${versionModes.join(', ')}, received ${input}`;
};

const expectedVersion = z
  .union(
    [
      z
        .number({ error: badExpectedVersion })
        .int({ error: badExpectedVersion })
        .min(0, { error: badExpectedVersion }),
      z.enum(versionModes, { error: badExpectedVersion }),
    ],
    { error: badExpectedVersion },
  )
  .describe('Append only if the job is at this version (409 otherwise)');

export const appendBody = z.strictObject({
  events: z.array(eventInput).min(1).max(limits.eventsPerAppend),
  expectedVersion: expectedVersion.optional(),
});

/** `expectedVersion` may come in the query instead, for clients that cannot change the body. */
export const appendQuery = z.strictObject({
  expectedVersion: z
    .string({ error: badExpectedVersion })
    .regex(/^(\d{1,15}|any|no_stream|stream_exists)$/, { error: badExpectedVersion })
    .transform((text) =>
      /^\d/.test(text) ? Number(text) : (text as (typeof versionModes)[number]),
    )
    .optional()
    .describe('As expectedVersion in the body; when both are sent they must agree'),
});

/** `true` or `false` in a query string. */
export const booleanText = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true')
  .optional();

/** A comma-separated list in a query string. */
const commaList = z
  .string()
  .max(2_000)
  .transform((value) => value.split(',').filter(Boolean));

const limit = (max: number) => z.coerce.number().int().min(1).max(max).optional();

export const jobsQuery = z.strictObject({
  project: name.optional(),
  kind: name.optional(),
  status: commaList
    .pipe(z.array(z.enum(jobStatuses)).max(jobStatuses.length))
    .optional()
    .describe('Comma-separated statuses'),
  active: booleanText.describe('Only running, paused and pending jobs, and those just ended'),
  parentJobId: id.optional(),
  q: searchText.optional().describe("Text in the job's id, name, kind or project"),
  limit: limit(10_000),
  cursor: z.string().max(300).optional().describe('The nextCursor of the previous page'),
  stalled: booleanText.describe('Only stalled jobs (true), or only jobs not stalled (false)'),
  condition: commaList
    .pipe(z.array(z.enum(conditionNames)).min(1).max(conditionNames.length))
    .optional()
    .describe(
      'Only jobs in one of these conditions (comma-separated: stalled, at_risk, late, failure_rate)',
    ),
});

export const failuresQuery = z.strictObject({
  format: z.enum(['groups', 'export']).optional().describe("'export' for the export document"),
});

export const itemsQuery = z.strictObject({
  status: z.enum(['pending', 'in_flight', 'failed', 'stuck']).optional(),
  leaseMs: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('For status=stuck: the lease of items started without one (default 0)'),
  limit: limit(10_000),
});

export const timelineQuery = z.strictObject({
  type: commaList
    .pipe(z.array(name).max(100))
    .optional()
    .describe("Comma-separated event types; one ending in '*' matches by prefix (x.*: custom)"),
  since: isoTime.optional(),
  until: isoTime.optional(),
  q: searchText.optional().describe('Text in messages, reasons and errors'),
  after: z.string().max(40).optional().describe('The nextCursor of the previous page'),
  limit: limit(1_000),
  order: z.enum(['asc', 'desc']).optional(),
});

export const logsQuery = z.strictObject({
  level: z.enum(['debug', 'info', 'warn', 'error']).optional(),
  after: z.string().max(40).optional().describe('The nextCursor of the previous page'),
  limit: limit(1_000),
  order: z.enum(['asc', 'desc']).optional(),
});

export const resumeBody = z
  .strictObject({
    leaseExpiredBefore: z.union([isoTime, z.number().finite()]).optional(),
    defaultLeaseMs: z.number().int().min(0).optional(),
    reason: z.string().min(1).max(limits.textLength).optional(),
    // The producer's clock for the events resume records, as `ledger.resume` takes it.
    occurredAt: isoTime.optional(),
  })
  .default({});

export const projectProgressQuery = z.strictObject({
  active: booleanText,
  operationId: id
    .optional()
    .describe(
      "Only this job, in the same shape (404 when it is not in the project); 'projects' then counts it alone",
    ),
  parentJobId: id.optional().describe('Only the jobs started with this parentJobId'),
});

export const stageMetricsQuery = z.strictObject({
  project: name.optional(),
  kind: name.optional(),
});

/** A log cursor, `"<transactionId>:<position>"`: an SSE event's id. */
const cursorText = logCursorText.optional();

export const jobStreamQuery = z.strictObject({
  after: cursorText.describe('Start after this cursor (Last-Event-ID wins when both are sent)'),
});

export const streamQuery = z.strictObject({
  project: name.optional(),
  job: commaList.pipe(z.array(id).max(1_000)).optional().describe('Comma-separated job ids'),
  type: commaList.pipe(z.array(name).max(100)).optional().describe('Comma-separated event types'),
  after: cursorText.describe('Start after this cursor (Last-Event-ID wins when both are sent)'),
});

/** Most events in one answer of `GET /v1/jobs/:id/events` and `GET /v1/events`, the default too. */
export const eventsPageLimit = 1_000;

export const jobEventsQuery = z.strictObject({
  fromVersion: z.coerce
    .number()
    .int()
    .min(1)
    .max(Number.MAX_SAFE_INTEGER)
    .optional()
    .describe('The first version to return (default 1)'),
  limit: limit(eventsPageLimit).describe(`At most this many events (default ${eventsPageLimit})`),
});

export const logEventsQuery = z.strictObject({
  after: cursorText.describe('Read the events after this log cursor (default "0:0": the start)'),
  limit: limit(eventsPageLimit).describe(`At most this many events (default ${eventsPageLimit})`),
});
