import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import {
  ConcurrencyError,
  EventTooLargeError,
  HeadwayError,
  IdempotencyConflictError,
  InvalidEventError,
  InvalidInputError,
  isTransient,
  JobNotStartedError,
} from '../errors.ts';
import type { ErrorCode, HeadwayErrorCode, ValidationIssue } from '../errors.ts';
import { pathFromPointer } from '../validation.ts';

/** The body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: readonly ValidationIssue[] } & Record<
    string,
    unknown
  >;
}

const statusOf: Record<HeadwayErrorCode, number> = {
  invalid_input: 400,
  invalid_event: 400,
  event_too_large: 413,
  not_found: 404,
  job_not_started: 404,
  concurrency: 409,
  database_unavailable: 503,
  idempotency_conflict: 409,
  job_finished: 409,
  runner_fenced: 503,
  store_busy: 503,
  store_lock_lost: 503,
  appender_closed: 503,
};

/** Seconds a client should wait before retrying while the database is unreachable. */
export const retryAfterSeconds = 2;

/**
 * Turns any error into a JSON answer: ledger errors by their code, request validation into
 * 400 with each issue's path, an unreachable database into 503 with `Retry-After`. Bad
 * input never becomes a 500.
 */
export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const part = error.validationContext ?? 'request';
    const issues = error.validation.map((issue) => ({
      path: pathFromPointer(part, issue.instancePath),
      message: issue.message ?? 'invalid',
    }));
    return reply.code(400).send(body('invalid_input', formatIssues(issues), { issues }));
  }
  if (error instanceof HeadwayError) {
    const extra: Record<string, unknown> = {};
    if (error instanceof InvalidEventError || error instanceof InvalidInputError) {
      extra.issues = error.issues;
    }
    if (error instanceof ConcurrencyError) {
      extra.expectedVersion = error.expected;
      extra.actualVersion = error.actual;
    }
    if (error instanceof EventTooLargeError) extra.limitBytes = error.limit;
    if (error instanceof JobNotStartedError) {
      extra.expectedType = 'job.started';
      extra.receivedType = error.received;
    }
    if (error instanceof IdempotencyConflictError) {
      extra.eventIds = error.eventIds;
      if (error.fields.length > 0) extra.fields = error.fields;
    }
    const status = statusOf[error.code];
    if (status === 503) reply.header('retry-after', String(retryAfterSeconds));
    return reply.code(status).send(body(error.code, error.message, extra));
  }
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(413).send(body('body_too_large', fastifyError.message ?? 'body too large'));
  }
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
    // Fastify's own 4xx: malformed JSON, a wrong content type, and the like.
    return reply
      .code(fastifyError.statusCode)
      .send(body('bad_request', fastifyError.message ?? 'bad request'));
  }
  if (isTransient(error)) {
    reply.header('retry-after', String(retryAfterSeconds));
    return reply
      .code(503)
      .send(body('database_unavailable', 'The database is unreachable; retry shortly'));
  }
  request.log.error({ err: error }, 'unexpected error');
  return reply.code(500).send(body('internal', 'Internal error; see the server log'));
}

/** An error answer's body. */
export function body(code: ErrorCode, message: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message, ...extra } } satisfies ErrorBody;
}

/** 503 with `Retry-After`: the request may succeed if sent again shortly. */
export function unavailable(reply: FastifyReply, code: ErrorCode, message: string) {
  return reply.code(503).header('retry-after', String(retryAfterSeconds)).send(body(code, message));
}

function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path}: ${issue.message}`)
    .join('; ');
}
