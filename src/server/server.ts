import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonSchemaTransform, validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { eventTypes } from '../../schema/events.ts';
import { limits } from '../../schema/limits.ts';
import type { EventInput } from '../../schema/events.ts';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { exportFailures, failureGroups, jobFailures } from '../../projections/job-failures.ts';
import {
  allItems,
  inFlightItems,
  itemBreakdown,
  jobItems,
  pendingItems,
  stuckItems,
} from '../../projections/job-items.ts';
import { jobSummary, summarize } from '../../projections/job-summary.ts';
import { describeEvent } from '../../projections/job-timeline.ts';
import type { Projection } from '../../projections/projection.ts';
import { CoalescingAppender } from '../append/coalescing-appender.ts';
import type { CoalescingAppenderOptions } from '../append/coalescing-appender.ts';
import type { DatabaseReadiness } from '../store/database-readiness.ts';
import { withQueryTimeout } from '../store/postgres-pool.ts';
import { SharedFollower } from '../live/shared-follower.ts';
import { formatLogCursor } from '../cursors.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { toJson } from '../json.ts';
import type { ExpectedVersion } from '../errors.ts';
import type { Ledger } from '../ledger.ts';
import { checkAccess, isLoopbackHost } from './auth.ts';
import type { Scope, TokenTable } from './auth.ts';
import { EventStreams, toWire } from './event-stream.ts';
import {
  clientErrorHandler,
  jsonBodyParser,
  jsonMediaType,
  noRoute,
  sendFrameworkError,
} from './framework-errors.ts';
import { body, retryAfterSeconds, sendError } from './http-errors.ts';
import { ServerMetrics } from './metrics.ts';
import { WebSocketSession } from './websocket.ts';
import * as schemas from './schemas.ts';

/** How a server is built. */
export interface ServerOptions {
  ledger: Ledger;
  /** Tokens and their scopes; without any, every route is open (bind to loopback only). */
  tokens?: TokenTable;
  /** Largest request body in bytes (default 16 MiB). */
  bodyLimitBytes?: number;
  /** Fastify's request log (default off). */
  logger?: boolean;
  /** How often WebSocket peers are pinged; one that misses a ping is cut off (default 15 s). */
  heartbeatMs?: number;
  /** Most event streams (SSE streams and WebSocket subscriptions) at once (default 5,000). */
  maxStreams?: number;
  /** Bounds of the appender that takes every append (group commit). */
  appender?: CoalescingAppenderOptions;
  /**
   * Whether the database is ready yet, for a server started before it was: until it is,
   * the API answers 503 with `Retry-After` and `/health` says why.
   */
  readiness?: DatabaseReadiness;
}

/** A write path whose oldest call has waited this long is stuck (503 on `/health`). */
const appendsStuckAfterMs = 10_000;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs for this route; none means the route is public. */
    scope?: Scope;
  }
}

const defaultBodyLimit = 16 * 1024 * 1024;
/** Bound on each query of a health check. */
const healthTimeoutMs = 3_000;
const dashboardRoot = fileURLToPath(new URL('../dashboard/', import.meta.url));
const require = createRequire(import.meta.url);

/** The folder of an installed package: the one above its entry named after it. */
function packageRoot(name: string): string {
  const entry = require.resolve(name);
  const marker = `${sep}node_modules${sep}${name}${sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot find the folder of ${name} in ${entry}`);
  return entry.slice(0, at + marker.length);
}

/** The browser modules the dashboard loads, by the name it loads them under. */
const vendored = new Map([
  ['eventsource-parser', dirname(require.resolve('eventsource-parser'))],
  ['lit-html', packageRoot('lit-html')],
  ['uplot', join(packageRoot('uplot'), 'dist')],
]);

/**
 * The HTTP API over a ledger: JSON routes under `/v1`, `/health` and `/openapi.json`.
 * Appends go through one coalescing appender (group commit); `close()` on the returned
 * server stops accepting, lets requests in flight finish, and writes what is queued.
 *
 * @example
 * const server = await createServer({ ledger });
 * await server.listen({ host: '127.0.0.1', port: 4680 });
 */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const { ledger } = options;
  const tokens = options.tokens ?? new Map();
  const appender = new CoalescingAppender(ledger, options.appender);
  const { readiness } = options;
  const maxStreams = options.maxStreams ?? 5_000;
  const bounds = {
    bodyLimit: options.bodyLimitBytes ?? defaultBodyLimit,
    // Ids are at most limits.idLength characters; the router measures them decoded.
    maxParamLength: limits.idLength * 3,
  };
  /** Fastify's own errors in the API's shape, then everything else. */
  const answerError = (error: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendFrameworkError(error, request, reply, bounds) ?? sendError(error, request, reply);
  const app = Fastify({
    // Errors are always logged; --log adds every request.
    logger: { level: options.logger ? 'info' : 'error' },
    bodyLimit: bounds.bodyLimit,
    routerOptions: { maxParamLength: bounds.maxParamLength },
    // Bad URLs and over-long ids never reach a route or the error handler.
    frameworkErrors: (error, request, reply) => void answerError(error, request, reply),
    clientErrorHandler,
    // Keep-alive sockets would hold `close()` open until clients hang up.
    forceCloseConnections: 'idle',
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // JSON only: any other body gets 415; a body that is not JSON says why.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    jsonMediaType,
    { parseAs: 'string' },
    jsonBodyParser(app.getDefaultJsonParser('error', 'error')),
  );
  // Positions and cursors are bigints: sent as strings.
  app.setReplySerializer((payload) => toJson(payload));
  app.setErrorHandler(answerError);
  app.setNotFoundHandler((request, reply) => reply.code(404).send(noRoute(request)));
  app.addHook('onRequest', async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    if (scope && readiness && !readiness.ready) {
      return unavailable(
        reply,
        'database_unavailable',
        `The server is waiting for the database: ${readiness.lastError ?? 'connecting'}`,
      );
    }
    if (tokens.size === 0) {
      // Open routes are for this machine only: a page elsewhere that rebinds a name to
      // 127.0.0.1 (Host) or opens a WebSocket here (Origin) is refused.
      const { host } = request.headers;
      // No Host at all is HTTP/1.0 from this machine's own tools.
      if ((host !== undefined && !isLoopbackHost(host)) || !isSameOrigin(request)) {
        if (request.headers.upgrade) {
          reply.raw.once('finish', () => request.raw.socket.destroy());
        }
        return reply
          .code(403)
          .send(body('forbidden', 'without tokens this server answers only its own machine'));
      }
      return;
    }
    if (!scope) return;
    const access = checkAccess(tokens, request.headers.authorization, scope);
    if (access !== 'allowed' && request.headers.upgrade) {
      // A refused WebSocket upgrade: its socket belongs to no HTTP exchange that would end it.
      reply.raw.once('finish', () => request.raw.socket.destroy());
    }
    if (access === 'unauthenticated') {
      reply.header('www-authenticate', 'Bearer');
      return reply
        .code(401)
        .send(
          body(
            'unauthenticated',
            'expected an Authorization: Bearer <token> header with a known token',
          ),
        );
    }
    if (access === 'forbidden') {
      return reply
        .code(403)
        .send(body('forbidden', `this token lacks the '${scope}' scope this route needs`));
    }
  });
  // One reader of the log for every SSE and WebSocket stream (docs/architecture.md, "Effects").
  const follower = new SharedFollower(ledger);
  const streams = new EventStreams(follower);
  const sessions = new Set<WebSocketSession>();
  const openStreams = () => {
    let open = streams.size;
    for (const session of sessions) open += session.size;
    return open;
  };
  const streamsFull = () => openStreams() >= maxStreams;
  const metrics = new ServerMetrics(ledger, openStreams);
  /** Appends through the group commit, counted for /metrics. */
  const appendEvents = async (
    jobId: string,
    events: EventInput[],
    options: { expectedVersion?: ExpectedVersion },
  ) => {
    const started = performance.now();
    const result = await appender.append(jobId, events, options);
    metrics.recordAppend(
      events.map((event) => event.type),
      (performance.now() - started) / 1_000,
    );
    return result;
  };
  // Open event streams would keep `close()` waiting for their clients to hang up.
  app.addHook('preClose', (done) => {
    streams.closeAll();
    follower.close();
    done();
  });
  app.addHook('onClose', async () => {
    await appender.close();
  });

  // Before any route, so that it can take over the upgrade of /v1/ws.
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'Headway',
        description: 'An event-sourced progress ledger for long-running jobs.',
        version: '1',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const read = { scope: 'read' } as const;
  const append = { scope: 'append' } as const;

  /** What a read found of a job, or 404 when it found none. */
  const found = <T>(jobId: string, answer: T | null): T => {
    if (answer === null) throw new NotFoundError(`Job '${jobId}'`);
    return answer;
  };
  /** The job's stream version, or 404. */
  const requireJob = async (jobId: string) =>
    found(jobId, (await ledger.streamVersion(jobId)) || null);
  /** A known job folded through a projection; 404 for an unknown one. */
  const projectJob = async <S>(jobId: string, projection: Projection<S>) => {
    await requireJob(jobId);
    return ledger.project(jobId, projection);
  };

  app.post(
    '/v1/jobs',
    { config: append, schema: { body: schemas.startJobBody, summary: 'Start a job' } },
    async (request, reply) => {
      const { jobId = randomUUID(), eventId, occurredAt, metadata, ...data } = request.body;
      const event = {
        type: 'job.started',
        data,
        ...(eventId ? { eventId } : {}),
        ...(occurredAt ? { occurredAt } : {}),
        ...(metadata ? { metadata } : {}),
      } as EventInput;
      const result = await appendEvents(jobId, [event], { expectedVersion: 'no_stream' });
      return reply.code(201).send({ jobId, version: result.nextExpectedVersion });
    },
  );

  app.post(
    '/v1/jobs/:id/events',
    {
      config: append,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.appendQuery,
        body: schemas.appendBody,
        summary: 'Append a batch of events to a job, whole or not at all',
      },
    },
    async (request) => {
      const { events } = request.body;
      const expectedVersion = agreedVersion(request.body.expectedVersion, request.query);
      const result = await appendEvents(
        request.params.id,
        events as EventInput[],
        expectedVersion === undefined ? {} : { expectedVersion },
      );
      return { jobId: result.streamId, version: result.nextExpectedVersion, events: result.events };
    },
  );

  app.get(
    '/v1/jobs',
    { config: read, schema: { querystring: schemas.jobsQuery, summary: 'List jobs' } },
    async (request) => {
      const { status, cursor, q, ...query } = request.query;
      return ledger.jobsPage(
        defined({ ...query, status: status?.length ? status : undefined, after: cursor, text: q }),
      );
    },
  );

  app.get(
    '/v1/jobs/:id',
    { config: read, schema: { params: schemas.jobParams, summary: "A job's progress" } },
    async (request) => found(request.params.id, await ledger.status(request.params.id)),
  );

  app.get(
    '/v1/jobs/:id/eta',
    { config: read, schema: { params: schemas.jobParams, summary: "A job's ETA" } },
    async (request) => {
      const status = found(request.params.id, await ledger.status(request.params.id));
      return { jobId: status.jobId, ...status.eta };
    },
  );

  app.get(
    '/v1/jobs/:id/throughput',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        summary: "A job's processed count over time (at most 128 points) and its ETA",
      },
    },
    async (request) => found(request.params.id, await ledger.throughput(request.params.id)),
  );

  app.get(
    '/v1/jobs/:id/summary',
    { config: read, schema: { params: schemas.jobParams, summary: "A job's summary" } },
    async (request) => {
      const state = await projectJob(request.params.id, jobSummary);
      return { jobId: request.params.id, ...summarize(state) };
    },
  );

  app.get(
    '/v1/jobs/:id/failures',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.failuresQuery,
        summary: "A job's failures, grouped",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      const state = await projectJob(jobId, jobFailures);
      if (request.query.format === 'export') {
        return exportFailures(state, jobId, new Date().toISOString());
      }
      return { jobId, groups: failureGroups(state) };
    },
  );

  app.get(
    '/v1/jobs/:id/items',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.itemsQuery,
        summary: "A job's items, by status",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      const state = await projectJob(jobId, jobItems);
      const { status, leaseMs = 0, limit = 1_000 } = request.query;
      const items =
        status === 'pending'
          ? pendingItems(state)
          : status === 'in_flight'
            ? inFlightItems(state)
            : status === 'stuck'
              ? stuckItems(state, Date.now(), leaseMs)
              : status === 'failed'
                ? allItems(state).filter((item) => item.status === 'failed')
                : allItems(state);
      return { jobId, count: items.length, items: items.slice(0, limit) };
    },
  );

  app.get(
    '/v1/jobs/:id/items/:itemId',
    {
      config: read,
      schema: {
        params: schemas.itemParams,
        summary:
          'One item: status, processed, stage, attempts, type, group, worker, lease, duration, last error',
      },
    },
    async (request) => {
      const { id: jobId, itemId } = request.params;
      const item = await ledger.item(jobId, itemId);
      return {
        jobId,
        ...item,
        // "Is it processed?" in one call, as `ledger.isProcessed` answers it.
        processed: item.status === 'completed' || item.status === 'skipped',
        leaseExpiresAt:
          item.status === 'inFlight' && item.startedAt !== null && item.leaseMs !== null
            ? item.startedAt + item.leaseMs
            : null,
      };
    },
  );

  app.get(
    '/v1/jobs/:id/counts',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        summary: "A job's items by status: in all, by item group and by item type",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      return { jobId, ...itemBreakdown(await projectJob(jobId, jobItems)) };
    },
  );

  app.get(
    '/v1/jobs/:id/timeline',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.timelineQuery,
        summary: "A job's events, filtered and paged",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      await requireJob(jobId);
      const { type, since, until, q, after, limit, order } = request.query;
      const page = await ledger.timeline(
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
    },
  );

  app.get(
    '/v1/jobs/:id/logs',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.logsQuery,
        summary: "A job's log lines (log.written events), oldest first unless order=desc",
      },
    },
    async (request) => {
      const jobId = request.params.id;
      await requireJob(jobId);
      const { level, after, limit, order } = request.query;
      const page = await ledger.timeline(
        defined({ jobId, types: ['log.written'], level, cursor: after, limit, order }),
      );
      return { events: page.events.map(toTimelineEntry), nextCursor: page.nextCursor };
    },
  );

  app.post(
    '/v1/jobs/:id/resume',
    {
      config: append,
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

  app.get(
    '/v1/jobs/:id/stream',
    {
      config: read,
      schema: {
        params: schemas.jobParams,
        querystring: schemas.jobStreamQuery,
        summary:
          "Server-Sent Events: the job's status, then each of its events (id: its cursor; Last-Event-ID resumes)",
      },
    },
    async (request, reply) => {
      const jobId = request.params.id;
      if (streamsFull()) return tooManyStreams(reply, maxStreams);
      await requireJob(jobId);
      await streams.serve(request, reply, ledger, {
        filter: { streamIds: [jobId] },
        after: request.query.after,
        snapshot: () => ledger.status(jobId),
      });
    },
  );

  app.get(
    '/v1/stream',
    {
      config: read,
      schema: {
        querystring: schemas.streamQuery,
        summary:
          "Server-Sent Events: the active jobs, then every event (of a project's jobs); Last-Event-ID resumes",
      },
    },
    async (request, reply) => {
      const { project, type, job, after } = request.query;
      if (streamsFull()) return tooManyStreams(reply, maxStreams);
      await streams.serve(request, reply, ledger, {
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
      config: read,
      schema: {
        summary:
          'WebSocket: {"type":"subscribe","id","jobId"|"project","after"?}, {"type":"unsubscribe","id"}, {"type":"ping"}',
      },
    },
    (socket) => {
      const session = new WebSocketSession(
        socket,
        ledger,
        follower,
        { heartbeatMs: options.heartbeatMs ?? 15_000, streamsFull, maxStreams },
        () => sessions.delete(session),
      );
      sessions.add(session);
    },
  );

  app.get(
    '/v1/projects/:project/progress',
    {
      config: read,
      schema: {
        params: schemas.projectParams,
        querystring: schemas.projectProgressQuery,
        summary: "A project's jobs and their totals ('all': every project)",
      },
    },
    async (request) => {
      const { project } = request.params;
      const { active, operationId, parentJobId } = request.query;
      const within = project === 'all' ? {} : { project };
      if (operationId !== undefined) {
        // One job: the same answer, narrowed to it; 404 when the project does not hold it.
        const [job] = await ledger.jobs({ ...within, jobId: operationId, limit: 1 });
        if (!job) {
          throw new NotFoundError(
            project === 'all'
              ? `Job '${operationId}'`
              : `Job '${operationId}' in project '${project}'`,
          );
        }
      }
      const [projects, jobs] = await Promise.all([
        ledger.projectOverview(defined({ active, jobId: operationId })),
        ledger.jobs({
          ...defined({ active, parentJobId, jobId: operationId }),
          ...within,
          limit: 1_000,
        }),
      ]);
      return {
        project,
        projects: project === 'all' ? projects : projects.filter((row) => row.project === project),
        jobs,
      };
    },
  );

  app.get(
    '/v1/metrics/stages',
    {
      config: read,
      schema: { querystring: schemas.stageMetricsQuery, summary: 'Stage durations across jobs' },
    },
    async (request) => ({ stages: await ledger.stageMetrics(defined(request.query)) }),
  );

  app.get(
    '/health',
    {
      schema: {
        summary: 'Which parts are up: the database, the write path, streams, projection lag',
      },
    },
    async (request, reply) => {
      const backlog = appender.backlog();
      const writes = backlog.failing
        ? 'failing'
        : backlog.oldestWaitMs > appendsStuckAfterMs
          ? 'stuck'
          : 'ok';
      const report = {
        writes: { status: writes, ...backlog, oldestWaitMs: Math.round(backlog.oldestWaitMs) },
        streams: { open: openStreams(), max: maxStreams, sharedReaders: 1 },
      };
      if (readiness && !readiness.ready) {
        reply.header('retry-after', String(retryAfterSeconds));
        return reply.code(503).send({
          status: 'unavailable',
          database: 'starting',
          error: readiness.lastError ?? 'connecting',
          ...report,
        });
      }
      let projections: unknown = null;
      try {
        // Bounded, so a dead database answers here within seconds, not never.
        projections = await withQueryTimeout(healthTimeoutMs, () => ledger.projectionStatus());
      } catch (error) {
        request.log.error({ err: error }, 'health check: the database did not answer');
        reply.header('retry-after', String(retryAfterSeconds));
        return reply.code(503).send({
          status: 'unavailable',
          database: 'unreachable',
          error: 'the database did not answer; see the server log',
          ...report,
        });
      }
      const status = writes === 'ok' ? 'ok' : 'unavailable';
      if (status !== 'ok') reply.code(503).header('retry-after', String(retryAfterSeconds));
      return {
        status,
        database: 'reachable',
        ...report,
        projections: (projections as Awaited<ReturnType<Ledger['projectionStatus']>>).map(
          (projection) => ({
            name: projection.name,
            lagEvents: projection.lag.events,
            lagCapped: projection.lag.capped,
            checkpoint: projection.generation
              ? formatLogCursor(projection.generation.cursor)
              : null,
          }),
        ),
      };
    },
  );

  app.get(
    '/metrics',
    { config: read, schema: { summary: 'Prometheus metrics', hide: true } },
    async (_request, reply) => {
      const text = await metrics.render();
      return reply.header('content-type', metrics.contentType).send(text);
    },
  );

  // The dashboard: plain files and modules, nothing fetched from elsewhere.
  await app.register(fastifyStatic, { root: dashboardRoot, prefix: '/dashboard/' });
  for (const [name, root] of vendored) {
    await app.register(fastifyStatic, {
      root,
      prefix: `/dashboard/vendor/${name}/`,
      decorateReply: false,
    });
  }
  // The event catalogue's types, for the timeline's filter, from the one definition.
  const catalogue = `export const eventTypes = ${JSON.stringify(eventTypes)};\n`;
  app.get('/dashboard/catalogue.js', { schema: { hide: true } }, (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(catalogue),
  );
  // The dashboard's own addresses all load the same page, which shows what they name.
  for (const path of ['/', '/jobs/:id', '/projects/:project']) {
    app.get(path, { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html'));
  }

  app.get('/openapi.json', { schema: { hide: true } }, () => Promise.resolve(app.swagger()));

  await app.ready();
  return app;
}

/** The answer past the cap on event streams: 503, try again later or elsewhere. */
function tooManyStreams(reply: FastifyReply, maxStreams: number) {
  return unavailable(
    reply,
    'too_many_streams',
    `this server holds its most event streams (${maxStreams}); retry later or on another server`,
  );
}

/** 503 with `Retry-After`: the request may succeed if sent again shortly. */
function unavailable(reply: FastifyReply, code: string, message: string) {
  return reply.code(503).header('retry-after', String(retryAfterSeconds)).send(body(code, message));
}

/** An event as the timeline routes send it: on the wire, with its one-line description. */
function toTimelineEntry(event: RecordedEvent) {
  return { ...toWire(event), summary: describeEvent(event) };
}

/** True when a browser's Origin (if it sent one) is this server's own. */
function isSameOrigin(request: FastifyRequest): boolean {
  const { origin, host } = request.headers;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
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
    {
      path: 'querystring.expectedVersion',
      message: `expected the same expectedVersion as the body's (${JSON.stringify(fromBody)}) or none, received ${JSON.stringify(fromQuery)}`,
    },
  ]);
}

/** The object without its undefined fields, as exact optional property types want it. */
function defined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
