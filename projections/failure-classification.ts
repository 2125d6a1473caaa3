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

/** The default rules of DESIGN §6; producer rules run before them. */
export const defaultClassificationRules: readonly ClassificationRule[] = [
  ...['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'].map(
    (code) => ({ match: { code }, category: 'timeout' }),
  ),
  { match: { name: 'AbortError' }, category: 'timeout' },
  { match: { name: 'TimeoutError' }, category: 'timeout' },
  { match: { status: 408 }, category: 'timeout' },
  { match: { status: 504 }, category: 'timeout' },
  ...[
    'ECONNRESET',
    'ENOTFOUND',
    'ECONNREFUSED',
    'EAI_AGAIN',
    'EPIPE',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'UND_ERR_SOCKET',
  ].map((code) => ({ match: { code }, category: 'network' })),
  { match: { status: 429 }, category: 'network' },
  { match: { statusRange: [500, 599] }, category: 'network' },
  ...['ENOSPC', 'EACCES', 'EROFS', 'EDQUOT', 'EPERM', 'EMFILE'].map((code) => ({
    match: { code },
    category: 'output',
  })),
  { match: { status: 401 }, category: 'auth' },
  { match: { status: 403 }, category: 'auth' },
  { match: { code: 'EAUTH' }, category: 'auth' },
  { match: { status: 415 }, category: 'not_applicable' },
  { match: { name: 'SyntaxError' }, category: 'extraction' },
  { match: { messagePattern: '\\btimed? ?out\\b' }, category: 'timeout' },
  { match: { messagePattern: 'socket hang up|network error|fetch failed' }, category: 'network' },
];

const retryableByDefault = new Set(['network', 'timeout']);

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
    try {
      if (!new RegExp(match.messagePattern, 'i').test(facts.message)) return false;
    } catch {
      return false; // an invalid pattern matches nothing
    }
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
 * else the defaults, else `unknown`. `network` and `timeout` are retryable by default,
 * `not_applicable` never; an explicit `retryable` wins.
 *
 * @example
 * classifyFailure({ message: 'read ECONNRESET', code: 'ECONNRESET' }); // { category: 'network', retryable: true }
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
 * them, else the default rules (DESIGN §6).
 */
export function classifyRecordedError(error: FailureError): Classification {
  return classifyFailure({
    message: error.message,
    ...(error.code === undefined ? {} : { code: error.code }),
    ...(error.category === undefined ? {} : { category: error.category }),
    ...(error.retryable === undefined ? {} : { retryable: error.retryable }),
  });
}
