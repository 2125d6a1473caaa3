import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { Ledger } from '../../ledger.ts';
import { InvalidInputError } from '../../errors.ts';
import { readFailureRules } from '../../append/failure-rules.ts';
import { isLoopbackHost, parseTokens } from '../../server/auth.ts';
import { createServer } from '../../server/server.ts';
import { runDemo } from '../../demo/simulated-pipeline.ts';
import { parseNonNegativeInt, parsePositiveInt } from '../arguments.ts';
import { abortOnSignals, resolveSchema, withLedger } from '../context.ts';
import type { GlobalOptions } from '../context.ts';
import { DatabaseReadiness } from '../../store/database-readiness.ts';
import { prepareSchema } from '../../store/migrations.ts';

interface ServeOptions {
  host: string;
  port: number;
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
    .option('--port <port>', 'port to listen on (0: any free one)', parseNonNegativeInt, 4680)
    .option('--log', 'log every request to stderr')
    .option('--demo', 'feed the served ledger with the simulated pipeline of `headway demo`')
    .option('--demo-items <n>', 'documents the demo processes', parsePositiveInt, 2_000)
    .option('--no-migrate', 'only check the schema is there (an app role may not migrate)')
    .option('--max-streams <n>', 'most SSE and WebSocket streams at once', parsePositiveInt, 5_000)
    .option(
      '--failure-rules <file>',
      'JSON rules that classify failures sent without a category, recorded at append (default: $HEADWAY_FAILURE_RULES)',
    )
    .action(async (options: ServeOptions, command: Command) => {
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
      // Read before the ledger opens: a bad rule stops the server before it serves anything.
      const rulesFile = options.failureRules ?? (process.env.HEADWAY_FAILURE_RULES || undefined);
      const failureRules = rulesFile === undefined ? undefined : await readFailureRules(rulesFile);
      await withLedger(
        command,
        async (ledger) => {
          const stop = abortOnSignals();
          const readiness = new DatabaseReadiness(() =>
            options.migrate ? prepareSchema(ledger.db, schema) : checkSchema(ledger),
          );
          // One try before listening; past that the server listens while it retries, so
          // clients get 503 with Retry-After rather than refused connections.
          await readiness.tryOnce();
          const server = await createServer({
            ledger,
            ...(tokens ? { tokens } : {}),
            logger: options.log ?? false,
            maxStreams: options.maxStreams,
            readiness,
          });
          let runners: { stop(): Promise<void> } | undefined;
          try {
            const address = await server.listen({ host: options.host, port: options.port });
            const { store, description } = ledger.location;
            const where =
              store === 'pglite'
                ? `the embedded store at ${description}`
                : `PostgreSQL ${description}`;
            process.stdout.write(
              `Headway serving ${where} on ${address} (API: ${address}/openapi.json)\n`,
            );
            process.stdout.write(`Dashboard: ${address}/\n`);
            if (failureRules) {
              process.stdout.write(
                `Failure rules: ${failureRules.length} from ${rulesFile}, recorded with each failure sent without a category.\n`,
              );
            }
            if (!tokens) {
              process.stdout.write(
                'No HEADWAY_TOKENS: every route is open, so the server listens on this machine only.\n',
              );
            }
            const ready = await readiness.wait(stop.signal, (error, failures) => {
              // The first failure and then every tenth: enough to see, not a flood.
              if (failures % 10 === 1) {
                process.stderr.write(`Waiting for the database (answering 503): ${error}\n`);
              }
            });
            if (ready) {
              if (readiness.failures > 0) process.stdout.write('The database is ready.\n');
              runners = ledger.runProjections();
              if (options.demo) await feedDemo(ledger, address, options.demoItems, stop.signal);
            }
            if (!stop.signal.aborted) {
              await new Promise((resolve) =>
                stop.signal.addEventListener('abort', resolve, { once: true }),
              );
            }
            process.stdout.write('Stopping: finishing requests and writing queued appends.\n');
          } finally {
            stop.dispose();
            // Stops accepting, waits for requests in flight, then flushes the appender.
            await server.close();
            await runners?.stop();
          }
        },
        { migrate: false, ...(failureRules ? { failureRules } : {}) },
      );
    });
}

/** For `--no-migrate`: the database answers and holds the log's tables. */
async function checkSchema(ledger: Ledger): Promise<void> {
  await ledger.db.selectFrom('events').select('position').limit(1).execute();
}

/** Runs the demo pipeline against the served ledger on the wall clock, so it can be watched. */
async function feedDemo(
  ledger: Ledger,
  address: string,
  items: number,
  signal: AbortSignal,
): Promise<void> {
  const jobId = randomUUID();
  process.stdout.write(
    `Demo job ${jobId}: ${address}/jobs/${jobId} (API: ${address}/v1/jobs/${jobId}), or: npx headway watch ${jobId} --url ${address}\n`,
  );
  const run = await runDemo(ledger, {
    jobId,
    items,
    realTime: true,
    print: (line) => {
      if (!signal.aborted) process.stdout.write(`${line}\n`);
    },
  });
  process.stdout.write(`Demo job ${run.jobId} done; still serving (Ctrl-C to stop).\n`);
}
