import { Option } from 'commander';
import type { Command } from 'commander';
import { createClient, HttpStatusError } from '../client/index.ts';
import type { HeadwayClient } from '../client/index.ts';
import { InvalidInputError, StoreBusyError } from '../errors.ts';
import type { Ledger } from '../ledger.ts';
import { expectedIssue } from '../validation.ts';
import { openCommandLedger } from './context.ts';

// How a read command reaches the ledger: a store it opens itself, or a Headway server,
// named by --url or $HEADWAY_URL, or found in the lock of an embedded store it serves.

/** The options `addServerOptions` adds. */
export interface ServerOptions {
  url?: string;
  token?: string;
}

/** How long one request to a server may take, answer included, before the command fails. */
export const serverRequestTimeoutMs = 10_000;

/** Adds `--url` and `--token` to a read command. */
export function addServerOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--url <url>',
        'read through this Headway server instead of a store (default: $HEADWAY_URL, else the one serving a busy store)',
      ),
    )
    .addOption(
      new Option('--token <token>', 'bearer token with the read scope (default: $HEADWAY_TOKEN)'),
    );
}

/** Where a read comes from: a store opened here, or a server (and why that one). */
export type ReadSource =
  { kind: 'ledger'; ledger: Ledger } | { kind: 'server'; client: HeadwayClient };

/**
 * Runs `action` on the ledger a read command names: the server of `--url` or
 * `$HEADWAY_URL` when given; else the store of the global options, or, when that is an
 * embedded store held by `headway serve`, the server its lock names. A busy store whose
 * holder serves nothing still fails with `store_busy`. The store is always closed.
 */
export async function withReadSource<T>(
  command: Command,
  action: (source: ReadSource) => Promise<T>,
): Promise<T> {
  const options = command.opts<ServerOptions>();
  const token = options.token ?? (process.env.HEADWAY_TOKEN || undefined);
  const named = options.url ?? (process.env.HEADWAY_URL || undefined);
  if (named !== undefined) {
    const name = options.url === undefined ? 'HEADWAY_URL' : '--url';
    return onServer(named, { name, hint: namedHint }, token, action);
  }
  let ledger: Ledger;
  try {
    ledger = await openCommandLedger(command);
  } catch (error) {
    if (!(error instanceof StoreBusyError) || error.servedAt === undefined) throw error;
    const name = `the lock of the embedded store at ${error.dataDir}`;
    return onServer(error.servedAt, { name, hint: lockHint }, token, action);
  }
  try {
    return await action({ kind: 'ledger', ledger });
  } finally {
    await ledger.close();
  }
}

/** Where a server's URL came from, and what to do when it does not answer. */
interface Origin {
  name: string;
  hint: string;
}

const namedHint =
  'check that `headway serve` runs there, or leave out --url and HEADWAY_URL to read the store itself';
const lockHint =
  'the process that holds the store named that URL but does not answer there; try again once it has started or stopped';

/** Runs `action` on a server, turning a failure to reach it into one clear line. */
async function onServer<T>(
  url: string,
  origin: Origin,
  token: string | undefined,
  action: (source: ReadSource) => Promise<T>,
): Promise<T> {
  if (!isWebAddress(url)) {
    throw new InvalidInputError([
      expectedIssue(origin.name, 'a server URL such as http://127.0.0.1:4680', url),
    ]);
  }
  const client = createClient({
    url,
    requestTimeoutMs: serverRequestTimeoutMs,
    ...(token ? { token } : {}),
  });
  try {
    return await action({ kind: 'server', client });
  } catch (error) {
    throw serverError(error, url, origin) ?? error;
  }
}

/** A clear error for a server that could not be reached or refused; undefined for others. */
function serverError(error: unknown, url: string, origin: Origin): Error | undefined {
  if (error instanceof HttpStatusError) {
    const code = (error.body as { error?: { code?: unknown } } | null)?.error?.code;
    const auth =
      error.status === 401 || error.status === 403
        ? '; give a token with the read scope (--token or HEADWAY_TOKEN)'
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
