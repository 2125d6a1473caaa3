import { formatLogCursor } from '../../cursors.ts';
import type { App } from '../app.ts';
import { toWire } from '../event-stream.ts';
import { readScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { requireJob } from './common.ts';

/**
 * The recorded events as the log holds them, for exports and for folds made elsewhere:
 * one job's in version order (`GET` beside the `POST` that appends them), or the whole
 * log after a log cursor, gap-safe, as `ledger.readStream` and `ledger.readAll` read them.
 */
export function eventRoutes(app: App): void {
  app.get(
    '/v1/jobs/:id/events',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.jobEventsQuery,
        summary:
          "A job's recorded events in version order, from fromVersion; nextVersion is the fromVersion of the next page",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      await requireJob(request.reads, jobId);
      const { fromVersion = 1, limit = schemas.eventsPageLimit } = request.query;
      const events = await request.reads.readStream(jobId, { fromVersion, limit });
      const nextVersion = (events.at(-1)?.version ?? fromVersion - 1) + 1;
      return { jobId, events: events.map(toWire), nextVersion };
    },
  );

  app.get(
    '/v1/events',
    {
      config: readScope,
      schema: {
        querystring: schemas.logEventsQuery,
        summary:
          'Every recorded event after a log cursor, in log order, gap-safe; nextCursor is the after of the next page',
      },
    },
    async (request) => {
      const { after, limit = schemas.eventsPageLimit } = request.query;
      const page = await request.reads.readAll({
        ...(after === undefined ? {} : { after }),
        limit,
      });
      return { events: page.events.map(toWire), nextCursor: formatLogCursor(page.next) };
    },
  );
}
