import type { FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { DatabaseReadiness } from '../store/database-readiness.ts';
import { checkAccess, isLoopbackHost } from './auth.ts';
import type { Scope, TokenTable } from './auth.ts';
import { body, unavailable } from './http-errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a token needs for this route; none means the route is public. */
    scope?: Scope;
  }
}

/** The route config of a route that reads the ledger. */
export const readScope = { scope: 'read' } as const;
/** The route config of a route that appends to the ledger. */
export const appendScope = { scope: 'append' } as const;
/** The route config of a route that manages the server (webhooks). */
export const adminScope = { scope: 'admin' } as const;

/**
 * The `onRequest` hook that guards every route that names a scope: 503 while the database
 * is not ready; without tokens, only requests from this machine (Host and Origin); with
 * tokens, a bearer token that holds the route's scope (401, 403 otherwise).
 */
export function accessHook(
  tokens: TokenTable,
  readiness: DatabaseReadiness | undefined,
): onRequestAsyncHookHandler {
  return async (request, reply) => {
    const scope = request.routeOptions.config.scope;
    if (scope && readiness && !readiness.ready) {
      return unavailable(
        reply,
        'database_unavailable',
        `The server is waiting for the database: ${readiness.lastError ?? 'connecting'}`,
      );
    }
    if (tokens.size === 0) return refuseOtherMachines(request, reply);
    if (!scope) return;
    return refuseWithoutScope(tokens, scope, request, reply);
  };
}

/**
 * Open routes are for this machine only: a page elsewhere that rebinds a name to
 * 127.0.0.1 (Host) or opens a WebSocket here (Origin) is refused.
 */
function refuseOtherMachines(request: FastifyRequest, reply: FastifyReply) {
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
  return undefined;
}

/** 401 without a known bearer token, 403 for a token without the scope. */
function refuseWithoutScope(
  tokens: TokenTable,
  scope: Scope,
  request: FastifyRequest,
  reply: FastifyReply,
) {
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
  return undefined;
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
