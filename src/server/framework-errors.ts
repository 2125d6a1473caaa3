import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyBodyParser, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { limits } from '../../schema/limits.ts';
import { InvalidInputError } from '../errors.ts';
import { body } from './http-errors.ts';

/** The one media type the API's bodies come in. */
export const jsonMediaType = 'application/json';

/** Longest piece of a request's own text an error message repeats. */
const echoLength = 200;

/** The text, cut to `echoLength` characters, as JSON, so that any character is visible. */
function shown(text: string): string {
  return JSON.stringify(text.length > echoLength ? `${text.slice(0, echoLength)}…` : text);
}

/**
 * Fastify's own errors (routing, media type, body size and framing) answered in the API's
 * error shape, saying what was expected and what was received; null for any other error.
 *
 * @example
 * app.setErrorHandler((error, request, reply) => sendFrameworkError(error, request, reply, bounds) ?? sendError(error, request, reply));
 */
export function sendFrameworkError(
  error: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  bounds: { maxParamLength: number; bodyLimit: number },
): FastifyReply | null {
  const code = (error as Partial<FastifyError> | null)?.code;
  const contentLength = request.headers['content-length'];
  const received = `${request.method} ${shown(request.url)}`;
  switch (code) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return reply
        .code(414)
        .send(
          body(
            'uri_too_long',
            `expected each path segment (an id) to be at most ${bounds.maxParamLength} characters once decoded (ids are at most ${limits.idLength}), received one of ${longestSegment(request.url)} in ${received}`,
            { limit: bounds.maxParamLength },
          ),
        );
    case 'FST_ERR_BAD_URL':
      return invalid(
        reply,
        'url',
        `expected a path of percent-encoded UTF-8, received ${received}, which does not decode`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = request.headers['content-type'];
      return reply
        .code(415)
        .send(
          body(
            'unsupported_media_type',
            `expected a body of content-type ${jsonMediaType}, received ${type === undefined ? 'no content-type' : `content-type ${shown(type)}`}`,
            { expected: jsonMediaType, received: type ?? null },
          ),
        );
    }
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const limit = request.routeOptions.bodyLimit ?? bounds.bodyLimit;
      return reply
        .code(413)
        .send(
          body(
            'body_too_large',
            `expected a body of at most ${limit} bytes, received ${contentLength === undefined ? 'more' : `${contentLength} bytes`}`,
            { limitBytes: limit },
          ),
        );
    }
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return invalid(
        reply,
        'headers.content-length',
        `expected a body of ${contentLength} bytes, as content-length says, received a body of another length`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return invalid(reply, 'body', emptyJson);
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return invalid(reply, 'body', 'expected a JSON document, received text that does not parse');
    default:
      return null;
  }
}

/** The answer for a method and path no route serves. */
export function noRoute(request: FastifyRequest) {
  const path = request.url.split('?', 1)[0] ?? '';
  return body(
    'not_found',
    `expected a method and path that /openapi.json lists, received ${request.method} ${shown(path)}`,
  );
}

function invalid(reply: FastifyReply, path: string, message: string) {
  const issues = [{ path, message }];
  return reply.code(400).send(body('invalid_input', `${path}: ${message}`, { issues }));
}

/** The length of the longest path segment, decoded as the router reads it. */
function longestSegment(url: string): string {
  const path = url.split('?', 1)[0] ?? '';
  let longest = 0;
  for (const segment of path.split('/')) {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // Left encoded: the router then measures it as it is.
    }
    longest = Math.max(longest, decoded.length);
  }
  return `${longest} characters`;
}

const emptyJson = 'expected a JSON document, received an empty body';

/**
 * Fastify's JSON body parser (prototype poisoning refused), whose failures say what was
 * wrong with the text: an `InvalidInputError` at `body`, so a 400 like any bad input.
 *
 * @example
 * app.addContentTypeParser(jsonMediaType, { parseAs: 'string' }, jsonBodyParser(app.getDefaultJsonParser('error', 'error')));
 */
export function jsonBodyParser(parse: FastifyBodyParser<string>): FastifyBodyParser<string> {
  return (request, text, done) => {
    void parse(request, text, (error, value) => {
      if (error) done(new InvalidInputError([{ path: 'body', message: whyNotJson(text) }]));
      else done(null, value);
    });
  };
}

/** What a body that the JSON parser refused holds instead. */
function whyNotJson(text: string): string {
  if (text.length === 0) return emptyJson;
  try {
    JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return `expected a JSON document, received text that does not parse: ${reason}`;
  }
  // Valid JSON that secure parsing refused.
  return 'expected JSON without "__proto__" or "constructor": {"prototype": …} keys, received one';
}

/**
 * Answers what Node's HTTP parser refuses before Fastify sees a request (headers too large,
 * a malformed request, a timeout) in the API's error shape, then closes the connection.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Duplex): void {
  // A reset or closed socket has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let answer = body(
    'bad_request',
    `expected an HTTP/1.1 request, received bytes that do not parse as one (${error.code ?? 'unknown'})`,
  );
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    answer = body(
      'request_timeout',
      "expected the whole request within the server's request timeout, received only part of it",
    );
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    answer = body(
      'headers_too_large',
      `expected a request line and headers of at most ${http.maxHeaderSize} bytes in all, received more`,
      { limitBytes: http.maxHeaderSize },
    );
  }
  if (socket.writable) {
    const text = JSON.stringify(answer);
    socket.write(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy(error);
}
