import type { Command } from 'commander';
import { InvalidInputError } from '../errors.ts';
import type { Ledger } from '../ledger.ts';
import { toJson } from '../json.ts';
import { openLedger } from '../open-ledger.ts';
import type { OpenLedgerOptions } from '../open-ledger.ts';

/** The options every command inherits from `headway`. */
export interface GlobalOptions {
  databaseUrl?: string;
  dataDir: string;
  schema?: string;
  /** `headway serve --listen-database-url`; other commands read the environment. */
  listenDatabaseUrl?: string;
  /** `headway serve --database-pooler`; other commands read the environment. */
  databasePooler?: string;
  /** `headway serve --read-database-url`; other commands read the environment. */
  readDatabaseUrl?: string;
}

/** The PostgreSQL URL chosen by flag or environment, if any. */
export function resolveDatabaseUrl(options: { databaseUrl?: string }): string | undefined {
  return (
    options.databaseUrl ??
    (process.env.HEADWAY_DATABASE_URL || undefined) ??
    (process.env.DATABASE_URL || undefined)
  );
}

/** The schema chosen by flag or environment, if any. */
export function resolveSchema(options: { schema?: string }): string | undefined {
  return options.schema ?? (process.env.HEADWAY_SCHEMA || undefined);
}

/**
 * How the PostgreSQL URL is reached (`--database-pooler`, else `$HEADWAY_DATABASE_POOLER`):
 * `transaction` for a transaction pooler such as PgBouncer, `none` (the default) directly.
 */
export function resolvePooler(options: {
  databasePooler?: string;
}): OpenLedgerOptions['pooler'] | undefined {
  const flag = options.databasePooler !== undefined;
  const mode = options.databasePooler ?? (process.env.HEADWAY_DATABASE_POOLER || undefined);
  if (mode === undefined) return undefined;
  if (mode === 'transaction' || mode === 'none') return mode;
  throw new InvalidInputError([
    {
      path: flag ? '--database-pooler' : 'HEADWAY_DATABASE_POOLER',
      message: `expected 'transaction' or 'none', received ${JSON.stringify(mode)}`,
    },
  ]);
}

/**
 * The direct URL for LISTEN and runner locks when the main one is a pooler
 * (`--listen-database-url`, else `$HEADWAY_LISTEN_DATABASE_URL`), if any.
 */
export function resolveListenDatabaseUrl(options: {
  listenDatabaseUrl?: string;
}): string | undefined {
  return options.listenDatabaseUrl ?? (process.env.HEADWAY_LISTEN_DATABASE_URL || undefined);
}

/**
 * The URL of a hot standby to read from (`--read-database-url`, else
 * `$HEADWAY_READ_DATABASE_URL`), if any.
 */
export function resolveReadDatabaseUrl(options: { readDatabaseUrl?: string }): string | undefined {
  return options.readDatabaseUrl ?? (process.env.HEADWAY_READ_DATABASE_URL || undefined);
}

/** What a command may change in how its ledger opens. */
export type CommandOpenOptions = Pick<OpenLedgerOptions, 'migrate' | 'failureRules' | 'conditions'>;

/** Opens the ledger the global options name; the caller closes it. */
export function openCommandLedger(
  command: Command,
  open: CommandOpenOptions = {},
): Promise<Ledger> {
  const options = command.optsWithGlobals<GlobalOptions>();
  const databaseUrl = resolveDatabaseUrl(options);
  const schema = resolveSchema(options);
  // Only PostgreSQL has a pooler, a listen URL or a replica; the embedded store ignores them.
  const pooler = databaseUrl ? resolvePooler(options) : undefined;
  const listenDatabaseUrl = databaseUrl ? resolveListenDatabaseUrl(options) : undefined;
  const readDatabaseUrl = databaseUrl ? resolveReadDatabaseUrl(options) : undefined;
  return openLedger({
    ...(databaseUrl ? { databaseUrl } : { dataDir: options.dataDir }),
    ...(schema ? { schema } : {}),
    ...(pooler ? { pooler } : {}),
    ...(listenDatabaseUrl ? { listenDatabaseUrl } : {}),
    ...(readDatabaseUrl ? { readDatabaseUrl } : {}),
    ...open,
  });
}

/** Opens the ledger the global options name, runs `action`, and always closes it. */
export async function withLedger<T>(
  command: Command,
  action: (ledger: Ledger) => Promise<T>,
  open: CommandOpenOptions = {},
): Promise<T> {
  const ledger = await openCommandLedger(command, open);
  try {
    return await action(ledger);
  } finally {
    await ledger.close();
  }
}

/** Writes a value as JSON (bigints and dates as strings), one document per call. */
export function printJson(value: unknown): void {
  process.stdout.write(`${toJson(value, 2)}\n`);
}

/** Writes human lines. */
export function printLines(lines: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * An AbortSignal that SIGINT or SIGTERM aborts, for commands that run until stopped;
 * `dispose` puts the default handlers back.
 */
export function abortOnSignals(): { signal: AbortSignal; abort(): void; dispose(): void } {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: controller.signal,
    abort: stop,
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}
