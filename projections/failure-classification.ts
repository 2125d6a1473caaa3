import type { FailureError } from '../schema/events.ts';
import { limits } from '../schema/limits.ts';

/** What a classifier looks at in a failure. */
export interface FailureFacts {
  message: string;
  code?: string;
  name?: string;
  /** An HTTP status, when the failure came from a response. */
  status?: number;
  /** A category the producer already chose; it wins over every rule. */
  category?: string;
  /** The producer's explicit word on retrying; it wins over the category default. */
  retryable?: boolean;
}

/** A producer's rule: when every given field matches, the failure gets this category. */
export interface ClassificationRule {
  match: {
    code?: string;
    name?: string;
    /** A regular expression source, matched case-insensitively against the message. */
    messagePattern?: string;
    status?: number;
    /** An inclusive range of HTTP statuses, such as [500, 599]. */
    statusRange?: readonly [number, number];
  };
  category: string;
  retryable?: boolean;
}

/** A category and whether an item that failed so is worth retrying. */
export interface Classification {
  category: string;
  retryable: boolean;
}

const timeoutCodes = [
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
];
const networkCodes = [
  'ECONNRESET',
  'ENOTFOUND',
  'ECONNREFUSED',
  'EAI_AGAIN',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
];
const outputCodes = ['ENOSPC', 'EACCES', 'EROFS', 'EDQUOT', 'EPERM', 'EMFILE'];

/**
 * A message pattern that matches any of these pattern sources as whole words. Each source
 * must begin and end with a word character, or the boundaries cannot hold.
 */
const anyOf = (...sources: string[]): string => String.raw`\b(?:${sources.join('|')})\b`;

/**
 * A message pattern for HTTP statuses written as text: "HTTP 503", "HTTP/1.1 503",
 * "HTTP Error 404: Not Found", "status code 502", "status: 429", "response code 503",
 * "returned error: 503" (curl), "503 Service Unavailable" or "503 Server Error" (requests),
 * and reason phrases distinctive enough to stand alone.
 */
function statusText(codes: string, reasons: string, reasonsAlone?: string): string {
  const numbered = String.raw`(?:HTTP(?:/[\d.]+)?(?: error)?|status(?: ?code)?|response code|returned error)\W{1,3}(?:${codes})`;
  const withReason = String.raw`(?:${codes}) (?:${reasons}|Server Error|Client Error)`;
  return anyOf(numbered, withReason, ...(reasonsAlone === undefined ? [] : [reasonsAlone]));
}

/** The texts of the message-only defaults, tried after every structured default. */
const messagePatterns = {
  certificate: anyOf(
    'x509',
    'SSL certificate problem',
    'certificate (?:verify failed|has expired)',
    'self[- ]signed certificate',
    'unable to (?:verify the first|get local issuer) certificate',
    "does not match certificate's altnames",
  ),
  timeoutStatus: statusText('408|504', 'Request Time-?out|Gateway Time-?out', 'Gateway Time-out'),
  timeout: anyOf(
    ...timeoutCodes,
    'timed? ?out',
    String.raw`\w*timeout(?:error|exception)?`,
    'deadline exceeded',
  ),
  authStatus: statusText(
    '401|403|407',
    'Unauthorized|Forbidden|Proxy Authentication Required',
    'Unauthorized|Forbidden',
  ),
  auth: anyOf(
    'authentication (?:failed|required)',
    'invalid (?:api[ _-]?key|token|credentials)',
    '(?:token|credentials) (?:has )?expired',
    String.raw`permission denied \(publickey`,
    'access ?denied',
    'login denied',
  ),
  networkStatus: statusText(
    String.raw`429|5\d\d`,
    'Too Many Requests|Internal Server Error|Bad Gateway|Service (?:Temporarily )?Unavailable',
    'Too Many Requests|Internal Server Error|Bad Gateway|Service (?:Temporarily )?Unavailable',
  ),
  network: anyOf(
    ...networkCodes,
    'socket hang up',
    'network error',
    'fetch failed',
    'connection (?:reset|refused|aborted|closed)',
    '(?:New)?Connection(?:Reset|Refused|Aborted)?Error',
    'RemoteDisconnected',
    'TransportError',
    'Max retries exceeded',
    'broken pipe',
    'no such host',
    'no route to host',
    'network is unreachable',
    'nxdomain',
    'getaddrinfo',
    'name or service not known',
    'temporary failure in name resolution',
    'could not resolve host',
    'failed to connect',
    'SSL connect error',
    'empty reply from server',
    'recv failure',
    // Go's HTTP client names the request first: Get "https://…": unexpected EOF.
    String.raw`(?:Get|Head|Post|Put|Patch|Delete) "[^"]*": (?:unexpected )?EOF`,
  ),
  curlNetwork: String.raw`\bcurl: \((?:5|6|7|18|35|52|55|56)\)`,
  output: anyOf(
    ...outputCodes,
    'no space left on device',
    'read-only file system',
    'disk quota exceeded',
    'too many open files',
    'PermissionError',
    'permission denied',
    'operation not permitted',
    'failure writing output',
  ),
  notApplicableStatus: statusText(
    '404|410|415',
    'Not Found|Gone|Unsupported Media Type',
    'Unsupported Media Type',
  ),
  notApplicable: anyOf(
    'unsupported (?:media|file|content|mime)[- ]?type',
    'unsupported (?:file )?format',
  ),
  extraction: anyOf(
    // Parse and decode errors by name: JSONDecodeError, Jason.DecodeError,
    // UnicodeDecodeError, XMLSyntaxError, yaml's ParserError, SyntaxError.
    String.raw`\w*(?:Decode|Parser?|Syntax)Error`,
    'in JSON at position',
    'is not valid JSON',
    'unexpected end of JSON input',
    'looking for beginning of (?:value|object key string)',
    'Expecting (?:value|property name)',
    'unexpected byte at position',
    'not well-formed',
    'XML syntax error',
    "codec can't decode",
    'invalid (?:start|continuation) byte',
    'invalid UTF-?8',
    'illegal base64',
    'ERR_INVALID_CHAR',
    'ERR_ENCODING_INVALID_ENCODED_DATA',
    'unexpected end of (?:file|archive|stream|data)',
    'unexpected EOF',
    'incorrect header check',
    'invalid (?:stored block lengths|distance too far back|block type)',
    'gzip: invalid header',
    'not in gzip format',
    'not a (?:gzipped|zip|valid zip) file',
    'does not look like a tar archive',
    'invalid tar header',
    'Error is not recoverable',
    'Bad(?:Zip|Gzip)File',
    String.raw`tarfile\.ReadError`,
    'corrupt input',
    'End-of-central-directory signature not found',
    'Compressed file ended',
    'File format not recognized',
  ),
  analysis: anyOf(
    'ValidationError',
    'ZodError',
    'KeyError',
    'IndexError',
    'AttributeError',
    'ZeroDivisionError',
    'RecursionError',
    'MatchError',
    '(?:Function|Case)ClauseError',
    'nil pointer dereference',
    'index out of range',
    'Maximum call stack size exceeded',
    'Cannot read propert(?:y|ies) of (?:undefined|null)',
  ),
};

/**
 * The default rules (docs/architecture.md, "Failure categories"); producer rules run before them. Structured facts (code,
 * name, status) come first, so they win over the message text; then the text, for
 * producers that send only a message (over HTTP, often the whole of what they know).
 *
 * Decisions where the text is ambiguous:
 * - Certificate failures (x509, "SSL certificate problem", "certificate verify failed",
 *   self-signed) are `auth`: the remote's identity could not be trusted, and retrying will
 *   not change that. A TLS handshake that merely failed ("SSL connect error") is `network`.
 * - 404 and 410 are `not_applicable`, like 415: the source has no such input, so there is
 *   nothing to process and nothing to retry. A wrong base URL shows as one large group.
 * - A payload that is not the archive expected ("does not look like a tar archive", "not in
 *   gzip format", "File is not a zip file") is `extraction`, not `not_applicable`: the job
 *   handles archives, this one could not be unpacked (often an error page or a truncated
 *   download). `not_applicable` is for inputs the job says it does not handle
 *   ("unsupported format", 415).
 * - Local file-system refusals (EACCES, EPERM, EROFS, "Permission denied" on a path,
 *   Python's PermissionError) are `output`; a remote's refusal ("Permission denied
 *   (publickey)", "Access Denied", 401, 403, invalid token) is `auth`.
 * - `analysis` is assigned only for runtime errors of the code that works on parsed input
 *   (KeyError, AttributeError, nil pointer dereference, "Cannot read properties of
 *   undefined", validation errors); anything subtler is left to producers.
 * - A missing file (ENOENT, FileNotFoundError) stays `unknown`: it may be a missing input,
 *   a missing output directory or a missing tool.
 */
export const defaultClassificationRules: readonly ClassificationRule[] = [
  ...timeoutCodes.map((code) => ({ match: { code }, category: 'timeout' })),
  { match: { name: 'AbortError' }, category: 'timeout' },
  { match: { name: 'TimeoutError' }, category: 'timeout' },
  { match: { status: 408 }, category: 'timeout' },
  { match: { status: 504 }, category: 'timeout' },
  ...networkCodes.map((code) => ({ match: { code }, category: 'network' })),
  { match: { status: 429 }, category: 'network' },
  { match: { statusRange: [500, 599] }, category: 'network' },
  ...outputCodes.map((code) => ({ match: { code }, category: 'output' })),
  { match: { status: 401 }, category: 'auth' },
  { match: { status: 403 }, category: 'auth' },
  { match: { status: 407 }, category: 'auth' },
  { match: { code: 'EAUTH' }, category: 'auth' },
  { match: { status: 404 }, category: 'not_applicable' },
  { match: { status: 410 }, category: 'not_applicable' },
  { match: { status: 415 }, category: 'not_applicable' },
  { match: { name: 'SyntaxError' }, category: 'extraction' },
  { match: { messagePattern: messagePatterns.certificate }, category: 'auth' },
  { match: { messagePattern: messagePatterns.timeoutStatus }, category: 'timeout' },
  { match: { messagePattern: messagePatterns.timeout }, category: 'timeout' },
  { match: { messagePattern: messagePatterns.authStatus }, category: 'auth' },
  { match: { messagePattern: messagePatterns.auth }, category: 'auth' },
  { match: { messagePattern: messagePatterns.networkStatus }, category: 'network' },
  { match: { messagePattern: messagePatterns.network }, category: 'network' },
  { match: { messagePattern: messagePatterns.curlNetwork }, category: 'network' },
  { match: { messagePattern: messagePatterns.output }, category: 'output' },
  { match: { messagePattern: messagePatterns.notApplicableStatus }, category: 'not_applicable' },
  { match: { messagePattern: messagePatterns.notApplicable }, category: 'not_applicable' },
  { match: { messagePattern: messagePatterns.extraction }, category: 'extraction' },
  { match: { messagePattern: messagePatterns.analysis }, category: 'analysis' },
];

const retryableByDefault = new Set(['network', 'timeout']);

/**
 * Message patterns compiled once each (null when invalid): classification runs in reducers
 * on every failure event. Deterministic, as it only remembers; cleared when large, as
 * producers may register patterns of their own.
 */
const compiledPatterns = new Map<string, RegExp | null>();

function compiled(source: string): RegExp | null {
  let pattern = compiledPatterns.get(source);
  if (pattern === undefined) {
    try {
      pattern = new RegExp(source, 'i');
    } catch {
      pattern = null; // an invalid pattern matches nothing
    }
    if (compiledPatterns.size >= 1_000) compiledPatterns.clear();
    compiledPatterns.set(source, pattern);
  }
  return pattern;
}

function matches(rule: ClassificationRule, facts: FailureFacts): boolean {
  const { match } = rule;
  if (match.code !== undefined && match.code !== facts.code) return false;
  if (match.name !== undefined && match.name !== facts.name) return false;
  if (match.status !== undefined && match.status !== facts.status) return false;
  if (match.statusRange !== undefined) {
    const [low, high] = match.statusRange;
    if (facts.status === undefined || facts.status < low || facts.status > high) return false;
  }
  if (match.messagePattern !== undefined) {
    if (compiled(match.messagePattern)?.test(facts.message) !== true) return false;
  }
  return (
    match.code !== undefined ||
    match.name !== undefined ||
    match.status !== undefined ||
    match.statusRange !== undefined ||
    match.messagePattern !== undefined
  );
}

/**
 * Classifies a failure: the producer's category, else the first matching producer rule,
 * else the defaults (structured facts first, then the message text), else `unknown`.
 * `network` and `timeout` are retryable by default, `not_applicable` never; an explicit
 * `retryable` wins.
 *
 * @example
 * classifyFailure({ message: 'read ECONNRESET', code: 'ECONNRESET' }); // { category: 'network', retryable: true }
 * classifyFailure({ message: 'tar: Unexpected EOF in archive' }); // { category: 'extraction', retryable: false }
 */
export function classifyFailure(
  facts: FailureFacts,
  rules: readonly ClassificationRule[] = [],
): Classification {
  let category = facts.category;
  let ruleRetryable: boolean | undefined;
  if (category === undefined) {
    const rule = [...rules, ...defaultClassificationRules].find((candidate) =>
      matches(candidate, facts),
    );
    category = rule?.category ?? 'unknown';
    ruleRetryable = rule?.retryable;
  }
  if (category === 'not_applicable') return { category, retryable: false };
  return {
    category,
    retryable: facts.retryable ?? ruleRetryable ?? retryableByDefault.has(category),
  };
}

function truncate(text: string, length: number): string {
  // PostgreSQL cannot store NUL in text or jsonb.
  const clean = text.replaceAll('\u0000', '');
  return clean.length <= length ? clean : `${clean.slice(0, length - 1)}…`;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/**
 * Turns any thrown value into the catalogue's failure shape, classified and within every
 * bound. Never throws.
 *
 * @example
 * describeError(Object.assign(new Error('ENOSPC: no space left'), { code: 'ENOSPC' }));
 * // { message: 'ENOSPC: no space left', code: 'ENOSPC', category: 'output', retryable: false, stack: [...] }
 */
export function describeError(
  thrown: unknown,
  options: { rules?: readonly ClassificationRule[] } = {},
): FailureError {
  try {
    let message: string;
    if (typeof thrown === 'string') message = thrown;
    else if (thrown instanceof Error) message = thrown.message || thrown.name;
    else if (typeof field(thrown, 'message') === 'string')
      message = field(thrown, 'message') as string;
    else if (thrown === undefined || thrown === null) message = String(thrown);
    else {
      try {
        message = JSON.stringify(thrown) ?? typeof thrown;
      } catch {
        message = 'unserialisable thrown value';
      }
    }
    // The code may sit on the error, on its cause (fetch), or only in the message.
    const rawCode = field(thrown, 'code') ?? field(field(thrown, 'cause'), 'code');
    const code =
      typeof rawCode === 'string' || typeof rawCode === 'number'
        ? String(rawCode)
        : /\b(E(?!RROR\b)[A-Z]{3,}[A-Z_]*)\b/.exec(message)?.[1];
    const rawName = field(thrown, 'name');
    const name = typeof rawName === 'string' ? rawName : undefined;
    const rawStatus =
      field(thrown, 'status') ??
      field(thrown, 'statusCode') ??
      field(field(thrown, 'response'), 'status');
    const status = typeof rawStatus === 'number' ? rawStatus : undefined;
    const rawCategory = field(thrown, 'category');
    const rawRetryable = field(thrown, 'retryable');
    const facts: FailureFacts = {
      message,
      ...(code === undefined ? {} : { code }),
      ...(name === undefined ? {} : { name }),
      ...(status === undefined ? {} : { status }),
      ...(typeof rawCategory === 'string' ? { category: rawCategory } : {}),
      ...(typeof rawRetryable === 'boolean' ? { retryable: rawRetryable } : {}),
    };
    const { category, retryable } = classifyFailure(facts, options.rules);
    const rawStack = field(thrown, 'stack');
    const stack =
      typeof rawStack === 'string'
        ? rawStack
            .split('\n')
            .map((line) => line.trim())
            .filter((line) => line.startsWith('at '))
            .slice(0, limits.stackFrames)
            .map((line) => truncate(line, limits.stackFrameLength))
        : [];
    return {
      message: truncate(message, limits.textLength),
      category: truncate(category, limits.nameLength),
      retryable,
      ...(code === undefined || code.length === 0
        ? {}
        : { code: truncate(code, limits.nameLength) }),
      ...(stack.length > 0 ? { stack } : {}),
    };
  } catch {
    return { message: 'unreadable thrown value', category: 'unknown', retryable: false };
  }
}

/**
 * The classification of a recorded error: its own category and retryable word when it has
 * them, else `rules`, then the default rules (docs/architecture.md, "Failure categories").
 */
export function classifyRecordedError(
  error: FailureError,
  rules: readonly ClassificationRule[] = [],
): Classification {
  return classifyFailure(
    {
      message: error.message,
      ...(error.code === undefined ? {} : { code: error.code }),
      ...(error.category === undefined ? {} : { category: error.category }),
      ...(error.retryable === undefined ? {} : { retryable: error.retryable }),
    },
    rules,
  );
}
