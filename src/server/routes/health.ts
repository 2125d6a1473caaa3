import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CoalescingAppender } from '../../append/coalescing-appender.ts';
import { formatLogCursor } from '../../cursors.ts';
import type { Ledger } from '../../ledger.ts';
import { projectionRow } from '../../persisted/projection-admin.ts';
import type { DatabaseReadiness } from '../../store/database-readiness.ts';
import { withQueryTimeout } from '../../store/postgres-pool.ts';
import type { App } from '../app.ts';
import { readScope } from '../hooks.ts';
import { retryAfterSeconds } from '../http-errors.ts';
import type { LiveStreams } from '../live-streams.ts';
import type { ServerMetrics } from '../metrics.ts';

/** A write path whose oldest call has waited this long is stuck (503 on `/health`). */
const appendsStuckAfterMs = 10_000;
/** Bound on each query of a health check. */
const healthTimeoutMs = 3_000;

/** What the health and metrics routes look at. */
export interface HealthRoutesDeps {
  ledger: Ledger;
  /** The group commit, whose backlog says whether writes go through. */
  appender: CoalescingAppender;
  live: LiveStreams;
  metrics: ServerMetrics;
  readiness?: DatabaseReadiness | undefined;
}

/** `/health` (public: which parts are up), the projections' lag, and `/metrics` (Prometheus). */
export function healthRoutes(app: App, deps: HealthRoutesDeps): void {
  app.get(
    '/health',
    {
      schema: {
        summary: 'Which parts are up: the database, the write path, streams, projection lag',
      },
    },
    (request, reply) => health(deps, request, reply),
  );

  app.get(
    '/v1/projections',
    {
      config: readScope,
      schema: {
        summary: 'Each persisted projection: its generation, checkpoint and lag behind the log',
      },
    },
    async () => (await deps.ledger.projectionStatus()).map(projectionRow),
  );

  app.get(
    '/v1/replication',
    {
      config: readScope,
      schema: { summary: 'How far the read replica trails the primary; null without one' },
    },
    async () => ({ replica: await deps.ledger.replication() }),
  );

  app.get(
    '/metrics',
    { config: readScope, schema: { summary: 'Prometheus metrics', hide: true } },
    async (_request, reply) => {
      const text = await deps.metrics.render();
      return reply.header('content-type', deps.metrics.contentType).send(text);
    },
  );
}

/** The health report: 200 when the database answers and writes go through, else 503. */
async function health(deps: HealthRoutesDeps, request: FastifyRequest, reply: FastifyReply) {
  const { ledger, appender, live, readiness } = deps;
  const backlog = appender.backlog();
  const writes = backlog.failing
    ? 'failing'
    : backlog.oldestWaitMs > appendsStuckAfterMs
      ? 'stuck'
      : 'ok';
  const report = {
    writes: { status: writes, ...backlog, oldestWaitMs: Math.round(backlog.oldestWaitMs) },
    streams: { open: live.open, max: live.max, sharedReaders: 1 },
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
  let projections: Awaited<ReturnType<Ledger['projectionStatus']>>;
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
    ...(await replicaHealth(ledger, request)),
    projections: projections.map((projection) => ({
      name: projection.name,
      lagEvents: projection.lag.events,
      lagCapped: projection.lag.capped,
      checkpoint: projection.generation ? formatLogCursor(projection.generation.cursor) : null,
    })),
  };
}

/**
 * The replica's part of the health report, when there is one. A replica that does not
 * answer is reported, not fatal: appends still go through, and reads fail with 503 until
 * it is back.
 */
async function replicaHealth(ledger: Ledger, request: FastifyRequest) {
  if (!ledger.hasReplica) return {};
  try {
    const replication = await withQueryTimeout(healthTimeoutMs, () => ledger.replication());
    return { replica: { status: 'ok', ...replication } };
  } catch (error) {
    request.log.error({ err: error }, 'health check: the read replica did not answer');
    return {
      replica: {
        status: 'unreachable',
        error: 'the read replica did not answer; see the server log',
      },
    };
  }
}
