import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.ts';
import { readFailureRules } from '../../append/failure-rules.ts';
import { isLoopbackHost, parseTokens } from '../../server/auth.ts';
import { parsePort, parsePositiveInt } from '../arguments.ts';
import { resolveSchema, withLedger } from '../context.ts';
import type { GlobalOptions } from '../context.ts';
import { serveLedger } from '../serve-ledger.ts';
import type { ServeSettings } from '../serve-ledger.ts';
import { nextFreePortTries } from '../serve-port.ts';

/** The port `headway serve` listens on when neither `--port` nor `PORT` says. */
export const defaultPort = 4680;

interface ServeOptions {
  host: string;
  port?: number;
  nextFreePort?: boolean;
  log?: boolean;
  demo?: boolean;
  demoItems: number;
  migrate: boolean;
  maxStreams: number;
  failureRules?: string;
}

/** `headway serve`: the HTTP API, with the projection runners, until Ctrl-C or SIGTERM. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the HTTP API (tokens from $HEADWAY_TOKENS) and keep projections current')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option(
      '--port <port>',
      `port to listen on (default: $PORT, else ${defaultPort}; 0: any free one)`,
      parsePort,
    )
    .option(
      '--next-free-port',
      `when the port is taken, take the first free one of the next ${nextFreePortTries}`,
    )
    .option('--log', 'log every request to stderr')
    .option('--demo', 'feed the served ledger with the simulated pipeline of `headway demo`')
    .option('--demo-items <n>', 'documents the demo processes', parsePositiveInt, 2_000)
    .option('--no-migrate', 'only check the schema is there (an app role may not migrate)')
    .option('--max-streams <n>', 'most SSE and WebSocket streams at once', parsePositiveInt, 5_000)
    .option(
      '--database-pooler <mode>',
      "'transaction' when the database URL is a transaction pooler such as PgBouncer (default: $HEADWAY_DATABASE_POOLER, else 'none')",
    )
    .option(
      '--listen-database-url <url>',
      'direct PostgreSQL URL for LISTEN and projection runner locks, past the pooler (default: $HEADWAY_LISTEN_DATABASE_URL)',
    )
    .option(
      '--read-database-url <url>',
      'PostgreSQL URL of a hot standby to serve reads, views and live streams from (default: $HEADWAY_READ_DATABASE_URL)',
    )
    .option(
      '--failure-rules <file>',
      'JSON rules that classify failures sent without a category, recorded at append (default: $HEADWAY_FAILURE_RULES)',
    )
    .action(async (options: ServeOptions, command: Command) => {
      const settings = await serveSettings(options, command);
      await withLedger(command, (ledger) => serveLedger(ledger, settings), {
        migrate: false,
        ...(settings.failureRules ? { failureRules: settings.failureRules } : {}),
      });
    });
}

/**
 * Reads and checks the options and the environment before anything opens: no tokens
 * means loopback only, and a bad failure rule stops the server before it serves.
 */
async function serveSettings(options: ServeOptions, command: Command): Promise<ServeSettings> {
  const tokens = process.env.HEADWAY_TOKENS ? parseTokens(process.env.HEADWAY_TOKENS) : null;
  if (!tokens && !isLoopbackHost(options.host)) {
    throw new InvalidInputError([
      {
        path: '--host',
        message: `expected a loopback address (127.0.0.1, ::1, localhost) while HEADWAY_TOKENS is unset, received '${options.host}'; set HEADWAY_TOKENS to serve other machines`,
      },
    ]);
  }
  const schema = resolveSchema(command.optsWithGlobals<GlobalOptions>());
  const rulesFile = options.failureRules ?? (process.env.HEADWAY_FAILURE_RULES || undefined);
  const failureRules = rulesFile === undefined ? undefined : await readFailureRules(rulesFile);
  return {
    host: options.host,
    port: options.port ?? portFromEnvironment() ?? defaultPort,
    nextFreePort: options.nextFreePort ?? false,
    log: options.log ?? false,
    demo: options.demo ?? false,
    demoItems: options.demoItems,
    migrate: options.migrate,
    maxStreams: options.maxStreams,
    tokens,
    schema,
    failureRules,
    rulesFile,
  };
}

/** `PORT`, as hosting platforms set it; undefined when unset or empty. */
function portFromEnvironment(): number | undefined {
  const text = process.env.PORT;
  if (text === undefined || text.trim() === '') return undefined;
  try {
    return parsePort(text);
  } catch (error) {
    throw new InvalidInputError([{ path: 'PORT', message: (error as Error).message }]);
  }
}
