import type { z } from 'zod';
import type { RecordedEvent } from '../../../schema/recorded-event.ts';
import { describeEvent } from '../../../projections/job-timeline.ts';
import type { LedgerReads } from '../../ledger.ts';
import type { App } from '../app.ts';
import { toWire } from '../event-stream.ts';
import { readScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { defined, requireJob } from './common.ts';

/** Every job's events or one job's, filtered and paged, and a job's log lines. */
export function timelineRoutes(app: App): void {
  app.get(
    '/v1/timeline',
    {
      config: readScope,
      schema: {
        querystring: schemas.timelineQuery,
        summary: "Every job's events, filtered and paged, for audits across jobs",
      },
    },
    async (request) => timelinePage(request.reads, undefined, request.query),
  );

  app.get(
    '/v1/jobs/:id/timeline',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.timelineQuery,
        summary: "A job's events, filtered and paged",
      },
    },
    async (request) => {
      await requireJob(request.reads, request.params.id);
      return timelinePage(request.reads, request.params.id, request.query);
    },
  );

  app.get(
    '/v1/jobs/:id/logs',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.logsQuery,
        summary: "A job's log lines (log.written events), oldest first unless order=desc",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      await requireJob(request.reads, jobId);
      const { level, after, limit, order } = request.query;
      const page = await request.reads.timeline(
        defined({ jobId, types: ['log.written'], level, cursor: after, limit, order }),
      );
      return { events: page.events.map(toTimelineEntry), nextCursor: page.nextCursor };
    },
  );
}

/** A page of the timeline as the routes send it: one job's, or every job's. */
async function timelinePage(
  reads: LedgerReads,
  jobId: string | undefined,
  query: z.output<typeof schemas.timelineQuery>,
) {
  const { type, since, until, q, after, limit, order } = query;
  const page = await reads.timeline(
    defined({
      jobId,
      types: type?.length ? type : undefined,
      since,
      until,
      text: q,
      cursor: after,
      limit,
      order,
    }),
  );
  return { events: page.events.map(toTimelineEntry), nextCursor: page.nextCursor };
}

/** An event as the timeline routes send it: on the wire, with its one-line description. */
function toTimelineEntry(event: RecordedEvent) {
  return { ...toWire(event), summary: describeEvent(event) };
}
