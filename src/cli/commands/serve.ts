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
import type { ConditionSettings } from '../../../projections/job-conditions.ts';
import { parseRetentionAge } from '../../retention/retention-age.ts';
import { expectedIssue } from '../../validation.ts';

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
  stallAfter?: string;
  failureRateAbove?: string;
  conditionsInterval: number;
  conditions: boolean;
  webhookAllowHosts?: string;
  publicUrl?: string;
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
    .option(
      '--stall-after <age>',
      'a running job that sets no threshold and has too little history to learn one is stalled after this silence: 10m, 90s, 2h (default: $HEADWAY_STALL_AFTER, else 10m)',
    )
    .option(
      '--failure-rate-above <rate>',
      "a job's recent failure rate above this (0 to 1) is a condition, unless the job sets its own; 'off' for none (default: $HEADWAY_FAILURE_RATE_ABOVE, else 0.5)",
    )
    .option(
      '--conditions-interval <ms>',
      'how often unfinished jobs are judged for conditions',
      parsePositiveInt,
      5_000,
    )
    .option(
      '--no-conditions',
      'record no conditions in the log (and so send no webhooks of them); reads still show them',
    )
    .option(
      '--webhook-allow-hosts <hosts>',
      'comma-separated hosts webhooks may target although they resolve to loopback, private or link-local addresses (default: $HEADWAY_WEBHOOK_ALLOW_HOSTS)',
    )
    .option(
      '--public-url <url>',
      "this server's URL as people reach it, for links in webhook payloads (default: $HEADWAY_PUBLIC_URL, else where it listens)",
    )
    .action(async (options: ServeOptions, command: Command) => {
      const settings = await serveSettings(options, command);
      await withLedger(command, (ledger) => serveLedger(ledger, settings), {
        migrate: false,
        ...(settings.failureRules ? { failureRules: settings.failureRules } : {}),
        conditions: conditionOptions(options),
      });
    });
}

/** The condition settings `serve`'s flags and environment give; checked by `openLedger`. */
function conditionOptions(options: ServeOptions): Partial<ConditionSettings> {
  const stallAfter = options.stallAfter ?? (process.env.HEADWAY_STALL_AFTER || undefined);
  const rate = options.failureRateAbove ?? (process.env.HEADWAY_FAILURE_RATE_ABOVE || undefined);
  return {
    ...(stallAfter === undefined
      ? {}
      : { defaultStallAfterMs: parseRetentionAge(stallAfter, '--stall-after') }),
    ...(rate === undefined ? {} : { defaultFailureRateAbove: parseRate(rate) }),
  };
}

/** The server's public URL: http or https, without credentials. */
function parsePublicUrl(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const url = URL.canParse(text) ? new URL(text) : null;
  if (url && (url.protocol === 'http:' || url.protocol === 'https:') && !url.username) {
    return text.replace(/\/$/, '');
  }
  throw new InvalidInputError([
    expectedIssue('--public-url', 'an http or https URL without credentials', text),
  ]);
}

/** A failure rate threshold: a number from 0 to 1, or 'off'. */
function parseRate(text: string): number | null {
  if (text.trim() === 'off') return null;
  const rate = Number(text);
  if (text.trim() !== '' && Number.isFinite(rate) && rate >= 0 && rate <= 1) return rate;
  throw new InvalidInputError([
    expectedIssue('--failure-rate-above', "a number from 0 to 1, or 'off'", text),
  ]);
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
    conditionsIntervalMs: options.conditions ? options.conditionsInterval : null,
    webhookAllowHosts: (options.webhookAllowHosts ?? process.env.HEADWAY_WEBHOOK_ALLOW_HOSTS ?? '')
      .split(',')
      .map((host) => host.trim())
      .filter(Boolean),
    publicUrl: parsePublicUrl(options.publicUrl ?? (process.env.HEADWAY_PUBLIC_URL || undefined)),
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
