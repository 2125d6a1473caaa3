import type { FastifyReply } from 'fastify';
import type { Ledger } from '../../ledger.ts';
import type { App } from '../app.ts';
import { readScope } from '../hooks.ts';
import { unavailable } from '../http-errors.ts';
import type { LiveStreams } from '../live-streams.ts';
import * as schemas from '../schemas.ts';
import { requireJob } from './common.ts';

/** What the live routes need. */
export interface LiveRoutesDeps {
  ledger: Ledger;
  /** The server's event streams and their cap. */
  live: LiveStreams;
  /** How often WebSocket peers are pinged. */
  heartbeatMs: number;
}

/** Server-Sent Events of one job or of all (a project's) jobs, and the WebSocket feed. */
export function liveRoutes(app: App, { ledger, live, heartbeatMs }: LiveRoutesDeps): void {
  app.get(
    '/v1/jobs/:id/stream',
    {
      config: readScope,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.jobStreamQuery,
        summary:
          "Server-Sent Events: the job's status, then each of its events (id: its cursor; Last-Event-ID resumes)",
      },
    },
    async (request, reply) => {
      const jobId = request.params.id;
      if (live.full) return tooManyStreams(reply, live.max);
      await requireJob(ledger, jobId);
      await live.sse.serve(request, reply, ledger, {
        filter: { streamIds: [jobId] },
        after: request.query.after,
        snapshot: () => ledger.status(jobId),
      });
    },
  );

  app.get(
    '/v1/stream',
    {
      config: readScope,
      schema: {
        querystring: schemas.streamQuery,
        summary:
          "Server-Sent Events: the active jobs, then every event (of a project's jobs); Last-Event-ID resumes",
      },
    },
    async (request, reply) => {
      const { project, type, job, after } = request.query;
      if (live.full) return tooManyStreams(reply, live.max);
      await live.sse.serve(request, reply, ledger, {
        filter: {
          ...(project ? { projects: [project] } : {}),
          ...(job?.length ? { streamIds: job } : {}),
          ...(type?.length ? { types: type } : {}),
        },
        after,
        snapshot: async () => ({
          jobs: await ledger.jobs({ active: true, ...(project ? { project } : {}) }),
        }),
      });
    },
  );

  app.get(
    '/v1/ws',
    {
      websocket: true,
      config: readScope,
      schema: {
        summary:
          'WebSocket: {"type":"subscribe","id","jobId"|"project","after"?}, {"type":"unsubscribe","id"}, {"type":"ping"}',
      },
    },
    (socket) => live.openSession(socket, heartbeatMs),
  );
}

/** The answer past the cap on event streams: 503, try again later or elsewhere. */
function tooManyStreams(reply: FastifyReply, maxStreams: number) {
  return unavailable(
    reply,
    'too_many_streams',
    `this server holds its most event streams (${maxStreams}); retry later or on another server`,
  );
}
