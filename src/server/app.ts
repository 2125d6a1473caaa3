import Fastify from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { limits } from '../../schema/limits.ts';
import { toJson } from '../json.ts';
import {
  clientErrorHandler,
  jsonBodyParser,
  jsonMediaType,
  noRoute,
  sendFrameworkError,
} from './framework-errors.ts';
import { sendError } from './http-errors.ts';

const defaultBodyLimit = 16 * 1024 * 1024;

/** What the bare Fastify instance needs to know. */
export interface AppSettings {
  /** Largest request body in bytes (default 16 MiB). */
  bodyLimitBytes?: number | undefined;
  /** Fastify's request log (default off; errors are always logged). */
  logger?: boolean | undefined;
}

/**
 * A Fastify instance that speaks the API's dialect, with no route yet: zod request schemas,
 * JSON bodies only, bigints sent as strings, and every error (Fastify's own, Node's HTTP
 * parser's, a route's) answered in one shape (`http-errors.ts`, `framework-errors.ts`).
 */
export function buildApp(settings: AppSettings) {
  const bounds = {
    bodyLimit: settings.bodyLimitBytes ?? defaultBodyLimit,
    // Ids are at most limits.idLength characters; the router measures them decoded.
    maxParamLength: limits.idLength * 3,
  };
  /** Fastify's own errors in the API's shape, then everything else. */
  const answerError = (error: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendFrameworkError(error, request, reply, bounds) ?? sendError(error, request, reply);
  const app = Fastify({
    // Errors are always logged; --log adds every request.
    logger: { level: settings.logger ? 'info' : 'error' },
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
  return app;
}

/** The server's Fastify instance, as every route module receives it. */
export type App = ReturnType<typeof buildApp>;
