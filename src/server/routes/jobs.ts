import type { App } from '../app.ts';
import { readScope } from '../hooks.ts';
import * as schemas from '../schemas.ts';
import { defined, found } from './common.ts';

/** The list of jobs, and one job's progress, ETA, throughput and summary. */
export function jobRoutes(app: App): void {
  app.get(
    '/v1/jobs',
    { config: readScope, schema: { querystring: schemas.jobsQuery, summary: 'List jobs' } },
    async (request) => {
      const { status, cursor, q, ...query } = request.query;
      return request.reads.jobsPage(
        defined({ ...query, status: status?.length ? status : undefined, after: cursor, text: q }),
      );
    },
  );

  app.get(
    '/v1/jobs/:id',
    { config: readScope, schema: { params: schemas.jobParams, summary: "A job's progress" } },
    async (request) => found(request.params.id, await request.reads.status(request.params.id)),
  );

  app.get(
    '/v1/jobs/:id/eta',
    { config: readScope, schema: { params: schemas.jobParams, summary: "A job's ETA" } },
    async (request) => {
      const status = found(request.params.id, await request.reads.status(request.params.id));
      return { jobId: status.jobId, ...status.eta };
    },
  );

  app.get(
    '/v1/jobs/:id/throughput',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        summary: "A job's processed count over time (at most 128 points) and its ETA",
      },
    },
    async (request) => found(request.params.id, await request.reads.throughput(request.params.id)),
  );

  app.get(
    '/v1/jobs/:id/summary',
    { config: readScope, schema: { params: schemas.jobParams, summary: "A job's summary" } },
    async (request) => {
      const summary = found(request.params.id, await request.reads.summary(request.params.id));
      return { jobId: request.params.id, ...summary };
    },
  );
}
