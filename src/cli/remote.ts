import { Option } from 'commander';
import type { Command } from 'commander';
import { createClient, HttpStatusError } from '../client/index.ts';
import type { HeadwayClient } from '../client/index.ts';
import { HeadwayError, InvalidInputError, StoreBusyError } from '../errors.ts';
import type { HeadwayErrorCode } from '../errors.ts';
import type { Ledger } from '../ledger.ts';
import { expectedIssue } from '../validation.ts';
import { openCommandLedger } from './context.ts';

// How a command reaches the ledger: a store it opens itself, or a Headway server, named
// by --url or $HEADWAY_URL, or found in the lock of an embedded store it serves.

/** The options `addServerOptions` adds. */
export interface ServerOptions {
  url?: string;
  token?: string;
}

/** What a command does on a server, and so the scopes its token needs. */
export type ServerScope = 'read' | 'append' | 'admin';

/** How long one request to a server may take, answer included, before the command fails. */
export const serverRequestTimeoutMs = 10_000;

/** How long a batch of events a command records is retried before the command fails. */
const serverGiveUpAfterMs = 30_000;

/** Adds `--url` and `--token` to a command that can work through a server. */
export function addServerOptions(
  command: Command,
  scopes: readonly ServerScope[] = ['read'],
): Command {
  const verb = scopes.some((scope) => scope !== 'read') ? 'work' : 'read';
  return command
    .addOption(
      new Option(
        '--url <url>',
        `${verb} through this Headway server instead of a store (default: $HEADWAY_URL, else the one serving a busy store)`,
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        `bearer token with the ${scopeNames(scopes)} (default: $HEADWAY_TOKEN)`,
      ),
    );
}

/** Where a command's data comes from and goes: a store opened here, or a server at a URL. */
export type CommandSource =
  { kind: 'ledger'; ledger: Ledger } | { kind: 'server'; client: HeadwayClient; url: string };

/**
 * Runs `action` on the ledger a command names: the server of `--url` or `$HEADWAY_URL`
 * when given; else the store of the global options, or, when that is an embedded store
 * held by `headway serve`, the server its lock names. A busy store whose holder serves
 * nothing still fails with `store_busy`. The store is always closed; on a server, what
 * the action recorded is stored before this returns. `scopes` are those the action's
 * requests need, named when the server refuses the token.
 */
export async function withSource<T>(
  command: Command,
  action: (source: CommandSource) => Promise<T>,
  scopes: readonly ServerScope[] = ['read'],
): Promise<T> {
  const options = command.opts<ServerOptions>();
  const token = options.token ?? (process.env.HEADWAY_TOKEN || undefined);
  const access: ServerAccess = { token, scopes };
  const named = options.url ?? (process.env.HEADWAY_URL || undefined);
  if (named !== undefined) {
    const name = options.url === undefined ? 'HEADWAY_URL' : '--url';
    return onServer(named, { name, hint: namedHint }, access, action);
  }
  let ledger: Ledger;
  try {
    ledger = await openCommandLedger(command);
  } catch (error) {
    if (!(error instanceof StoreBusyError) || error.servedAt === undefined) throw error;
    const name = `the lock of the embedded store at ${error.dataDir}`;
    return onServer(error.servedAt, { name, hint: lockHint }, access, action);
  }
  try {
    return await action({ kind: 'ledger', ledger });
  } finally {
    await ledger.close();
  }
}

/** The token a command sends and the scopes it needs. */
interface ServerAccess {
  token: string | undefined;
  scopes: readonly ServerScope[];
}

/** Where a server's URL came from, and what to do when it does not answer. */
interface Origin {
  name: string;
  hint: string;
}

const namedHint =
  'check that `headway serve` runs there, or leave out --url and HEADWAY_URL to use the store itself';
const lockHint =
  'the process that holds the store named that URL but does not answer there; try again once it has started or stopped';

/** Runs `action` on a server, turning a failure to reach it into one clear line. */
async function onServer<T>(
  url: string,
  origin: Origin,
  access: ServerAccess,
  action: (source: CommandSource) => Promise<T>,
): Promise<T> {
  if (!isWebAddress(url)) {
    throw new InvalidInputError([
      expectedIssue(origin.name, 'a server URL such as http://127.0.0.1:4680', url),
    ]);
  }
  const client = createClient({
    url,
    requestTimeoutMs: serverRequestTimeoutMs,
    giveUpAfterMs: serverGiveUpAfterMs,
    ...(access.token ? { token: access.token } : {}),
  });
  try {
    const result = await action({ kind: 'server', client, url });
    // Events an action recorded may still be buffered: stored here, or the command fails.
    await client.close();
    return result;
  } catch (error) {
    throw serverError(error, url, origin, access.scopes) ?? error;
  }
}

/** A clear error for a server that could not be reached or refused; undefined for others. */
function serverError(
  error: unknown,
  url: string,
  origin: Origin,
  scopes: readonly ServerScope[],
): Error | undefined {
  if (error instanceof HttpStatusError) {
    const answer = (error.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = answer?.code;
    if (
      typeof code === 'string' &&
      ledgerRefusals.has(code) &&
      typeof answer?.message === 'string'
    ) {
      // The ledger's own refusal, worded by it: printed as a store opened here prints it.
      return new HeadwayError(code as HeadwayErrorCode, answer.message, { cause: error });
    }
    const auth =
      error.status === 401 || error.status === 403
        ? `; give a token with the ${scopeNames(scopes)} (--token or HEADWAY_TOKEN)`
        : '';
    return new Error(
      `The Headway server at ${url} answered ${error.message}${typeof code === 'string' ? ` (${code})` : ''}${auth}`,
      { cause: error },
    );
  }
  const reason = unreachableReason(error);
  if (reason === undefined) return undefined;
  return new Error(
    `Could not reach the Headway server at ${url} (from ${origin.name}): expected an answer, received ${reason}; ${origin.hint}`,
    { cause: error },
  );
}

/** Codes of the ledger's refusals, which a server passes on as the ledger worded them. */
const ledgerRefusals = new Set<string>([
  'concurrency',
  'event_too_large',
  'idempotency_conflict',
  'invalid_event',
  'invalid_input',
  'job_finished',
  'job_not_started',
  'not_found',
] satisfies HeadwayErrorCode[]);

/** "read scope", "read and append scopes". */
function scopeNames(scopes: readonly ServerScope[]): string {
  return `${scopes.join(' and ')} scope${scopes.length === 1 ? '' : 's'}`;
}

function isWebAddress(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** Socket errors as a reader of the message knows them. */
const socketErrors: Record<string, string> = {
  ECONNREFUSED: 'ECONNREFUSED (nothing listens there)',
  ENOTFOUND: 'ENOTFOUND (no such host)',
  ECONNRESET: 'ECONNRESET (the connection was cut)',
};

/** What went wrong on the way to a server, or undefined when the error is not of that kind. */
function unreachableReason(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error.name === 'TimeoutError') return `no answer within ${serverRequestTimeoutMs / 1_000} s`;
  // fetch fails with a TypeError whose cause holds the socket's error code.
  if (error instanceof TypeError && error.message === 'fetch failed') {
    const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
    if (typeof cause?.code === 'string') return socketErrors[cause.code] ?? cause.code;
    return typeof cause?.message === 'string' ? cause.message : 'a failed request';
  }
  return undefined;
}
