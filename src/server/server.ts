import fastifyWebsocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { CoalescingAppender } from '../append/coalescing-appender.ts';
import type { CoalescingAppenderOptions } from '../append/coalescing-appender.ts';
import type { Ledger, LedgerReads } from '../ledger.ts';
import { defaultReplayWaitMs } from '../store/replica.ts';
import type { DatabaseReadiness } from '../store/database-readiness.ts';
import { buildApp } from './app.ts';
import type { TokenTable } from './auth.ts';
import { accessHook } from './hooks.ts';
import { LiveStreams } from './live-streams.ts';
import { meteredAppender, ServerMetrics } from './metrics.ts';
import { registerOpenApi } from './openapi.ts';
import { readSourceHook } from './read-source.ts';
import { appendRoutes, resumeRoute } from './routes/appends.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { itemRoutes } from './routes/items.ts';
import { jobRoutes } from './routes/jobs.ts';
import { liveRoutes } from './routes/live.ts';
import { projectRoutes } from './routes/projects.ts';
import { timelineRoutes } from './routes/timeline.ts';
import { webhookRoutes } from './routes/webhooks.ts';

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
  /**
   * With a read replica: how long a read that sends `Headway-Read-After` waits for the
   * replica to replay that far before it is read from the primary (default 2,000 ms).
   */
  readAfterWaitMs?: number;
  /**
   * Webhooks: hosts allowed as targets despite a loopback, private or link-local address
   * (default none), and the server's public URL for links in payloads (default: where it
   * listens, once it does).
   */
  webhooks?: { allowHosts?: readonly string[]; publicUrl?: string };
}

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
  const { ledger, readiness } = options;
  const app = buildApp(options);
  const appender = new CoalescingAppender(ledger, options.appender);
  const live = new LiveStreams(ledger, options.maxStreams ?? 5_000);
  const metrics = new ServerMetrics(ledger, () => live.open);

  app.addHook('onRequest', accessHook(options.tokens ?? new Map(), readiness));
  app.decorateRequest('reads', null as unknown as LedgerReads);
  app.addHook('preHandler', readSourceHook(ledger, options.readAfterWaitMs ?? defaultReplayWaitMs));
  // Open event streams would keep `close()` waiting for their clients to hang up.
  app.addHook('preClose', (done) => {
    live.close();
    done();
  });
  app.addHook('onClose', async () => {
    await appender.close();
  });
  // Before any route, so that it can take over the upgrade of /v1/ws.
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } });
  await registerOpenApi(app);

  const writes = { ledger, appender: meteredAppender(appender, metrics) };
  appendRoutes(app, writes);
  jobRoutes(app);
  itemRoutes(app);
  timelineRoutes(app);
  eventRoutes(app);
  resumeRoute(app, writes);
  liveRoutes(app, { ledger, live, heartbeatMs: options.heartbeatMs ?? 15_000 });
  projectRoutes(app);
  webhookRoutes(app, {
    webhooks: ledger.webhooks,
    allowHosts: options.webhooks?.allowHosts ?? [],
    publicUrl: () => options.webhooks?.publicUrl ?? listeningUrl(app),
  });
  healthRoutes(app, { ledger, appender, live, metrics, readiness });
  await dashboardRoutes(app);

  await app.ready();
  return app;
}

/** Where the server listens, as a URL; null before it does. */
function listeningUrl(app: FastifyInstance): string | null {
  const [address] = app.addresses();
  if (!address || typeof address === 'string') return null;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
