import { createHash, timingSafeEqual } from 'node:crypto';
import * as z from 'zod';
import { InvalidInputError } from '../errors.ts';

/** What a token may do: `read` the ledger, `append` to it, or everything (`admin`). */
export type Scope = 'read' | 'append' | 'admin';

const scopes = ['read', 'append', 'admin'] as const;

/** Tokens and their scopes, as `HEADWAY_TOKENS` gives them. */
export type TokenTable = ReadonlyMap<string, ReadonlySet<Scope>>;

const tokensSchema = z
  .record(z.string().min(16).max(512), z.array(z.enum(scopes)).min(1).max(scopes.length))
  // An empty table would open every route while looking configured.
  .refine((table) => Object.keys(table).length > 0, 'expected at least one token');

/**
 * Parses `HEADWAY_TOKENS`: a JSON object from token to scopes.
 *
 * @example
 * parseTokens('{"0123456789abcdef0123": ["append", "read"], "fedcba9876543210fedc": ["admin"]}');
 */
export function parseTokens(text: string): TokenTable {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw tokensError('a JSON object', 'text that is not JSON');
  }
  const parsed = tokensSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length > 0 ? ` at ${issue.path.map(String).join('.')}` : '';
    throw tokensError(
      'a JSON object from tokens of 16 to 512 characters to a list of scopes (read, append, admin)',
      `${issue.message}${where}`,
    );
  }
  return new Map(Object.entries(parsed.data).map(([token, list]) => [token, new Set(list)]));
}

function tokensError(expected: string, received: string): InvalidInputError {
  return new InvalidInputError([
    { path: 'HEADWAY_TOKENS', message: `expected ${expected}, received ${received}` },
  ]);
}

/** The outcome of checking a request's credentials against a scope. */
export type AccessCheck = 'allowed' | 'unauthenticated' | 'forbidden';

/**
 * Checks the bearer token of an `Authorization` header. Every known token is compared, in
 * constant time over fixed-length digests, so the answer's timing says nothing of which
 * tokens exist or how much of one matched.
 */
export function checkAccess(
  tokens: TokenTable,
  authorization: string | undefined,
  needed: Scope,
): AccessCheck {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (!match) return 'unauthenticated';
  const presented = digest(match[1]!);
  let granted: ReadonlySet<Scope> | undefined;
  for (const [token, tokenScopes] of tokens) {
    if (timingSafeEqual(presented, digest(token))) granted = tokenScopes;
  }
  if (!granted) return 'unauthenticated';
  return granted.has(needed) || granted.has('admin') ? 'allowed' : 'forbidden';
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** True for a host name (or Host header, port and all) that names this machine. */
export function isLoopbackHost(host: string): boolean {
  // "[::1]:4680", "127.0.0.1:4680", "localhost", or a bare IPv6 address such as "::1".
  const name = host.startsWith('[')
    ? host.slice(1, host.indexOf(']'))
    : host.split(':').length === 2
      ? host.split(':')[0]!
      : host;
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
