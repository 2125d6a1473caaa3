import { randomUUID } from 'node:crypto';
import type { EventInput } from '../../../schema/events.ts';
import type { EventAppender } from '../../append/job-recorder.ts';
import { InvalidInputError } from '../../errors.ts';
import type { ExpectedVersion } from '../../errors.ts';
import type { Ledger } from '../../ledger.ts';
import { expectedIssue } from '../../validation.ts';
import type { App } from '../app.ts';
import { appendScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { defined } from './common.ts';

/** What the write routes need: the ledger (to resume) and the appender of every append. */
export interface AppendRoutesDeps {
  ledger: Ledger;
  /** The group commit, counted for /metrics. */
  appender: EventAppender;
}

/** `POST /v1/jobs` (start a job) and `POST /v1/jobs/:id/events` (append a batch). */
export function appendRoutes(app: App, { appender }: AppendRoutesDeps): void {
  app.post(
    '/v1/jobs',
    { config: appendScope, schema: { body: schemas.startJobBody, summary: 'Start a job' } },
    async (request, reply) => {
      const { jobId = randomUUID(), eventId, occurredAt, metadata, ...data } = request.body;
      const event = {
        type: 'job.started',
        data,
        ...(eventId ? { eventId } : {}),
        ...(occurredAt ? { occurredAt } : {}),
        ...(metadata ? { metadata } : {}),
      } as EventInput;
      const result = await appender.append(jobId, [event], { expectedVersion: 'no_stream' });
      return reply
        .code(201)
        .send({ jobId, version: result.nextExpectedVersion, cursor: result.cursor });
    },
  );

  app.post(
    '/v1/jobs/:id/events',
    {
      config: appendScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.appendQuery,
        body: schemas.appendBody,
        summary: 'Append a batch of events to a job, whole or not at all',
      },
    },
    async (request) => {
      const { events } = request.body;
      refuseServerRecords(events);
      const expectedVersion = agreedVersion(request.body.expectedVersion, request.query);
      const result = await appender.append(
        request.params.id,
        events as EventInput[],
        expectedVersion === undefined ? {} : { expectedVersion },
      );
      return {
        jobId: result.streamId,
        version: result.nextExpectedVersion,
        cursor: result.cursor,
        events: result.events,
      };
    },
  );
}

/**
 * Refuses `condition.*` events: the server records conditions itself, and a forged one would
 * be signed and sent to every webhook that wants it.
 */
function refuseServerRecords(events: readonly { type: string }[]): void {
  const issues = events.flatMap((event, index) =>
    event.type.startsWith('condition.')
      ? [
          expectedIssue(
            `body.events[${index}].type`,
            "a producer's event type (condition.* events are recorded by the server)",
            event.type,
          ),
        ]
      : [],
  );
  if (issues.length > 0) throw new InvalidInputError(issues);
}

/** `POST /v1/jobs/:id/resume`: release a crashed job's expired leases, say what is left. */
export function resumeRoute(app: App, { ledger }: AppendRoutesDeps): void {
  app.post(
    '/v1/jobs/:id/resume',
    {
      config: appendScope,
      schema: {
        params: schemas.jobParams,
        body: schemas.resumeBody,
        summary: 'Resume a crashed job: release expired leases, return what is left',
      },
    },
    async (request) => {
      const { leaseExpiredBefore, ...rest } = request.body;
      return ledger.resume(request.params.id, {
        ...defined(rest),
        ...(leaseExpiredBefore === undefined
          ? {}
          : {
              leaseExpiredBefore:
                typeof leaseExpiredBefore === 'number'
                  ? leaseExpiredBefore
                  : new Date(leaseExpiredBefore),
            }),
      });
    },
  );
}

/**
 * The expected version of an append from its body or its query; both may be sent only
 * when they agree.
 */
function agreedVersion(
  fromBody: ExpectedVersion | undefined,
  query: { expectedVersion?: ExpectedVersion | undefined },
): ExpectedVersion | undefined {
  const fromQuery = query.expectedVersion;
  if (fromBody === undefined) return fromQuery;
  if (fromQuery === undefined || fromQuery === fromBody) return fromBody;
  throw new InvalidInputError([
    expectedIssue(
      'querystring.expectedVersion',
      `the same expectedVersion as the body's (${JSON.stringify(fromBody)}) or none`,
      fromQuery,
    ),
  ]);
}
