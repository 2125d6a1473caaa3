import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ClassificationRule } from '../../projections/failure-classification.ts';
import type { Ledger } from '../ledger.ts';
import type { TokenTable } from '../server/auth.ts';
import { createServer } from '../server/server.ts';
import { runDemo } from '../demo/simulated-pipeline.ts';
import { DatabaseReadiness } from '../store/database-readiness.ts';
import { prepareSchema } from '../store/migrations.ts';
import { advertiseServedUrl } from '../store/store-lock.ts';
import { isTransient } from '../errors.ts';
import { abortOnSignals } from './context.ts';
import { listenOnPort } from './serve-port.ts';

/** What `headway serve` runs with, its options read and checked. */
export interface ServeSettings {
  host: string;
  /** 0 takes any free port. */
  port: number;
  /** When the port is taken, take the first free one of the next 20 (`--next-free-port`). */
  nextFreePort: boolean;
  log: boolean;
  /** Feed the ledger with the demo pipeline once the database is ready. */
  demo: boolean;
  demoItems: number;
  /** Migrate the schema; else only check it is there. */
  migrate: boolean;
  maxStreams: number;
  /** Null when `HEADWAY_TOKENS` is unset: every route is open, on loopback only. */
  tokens: TokenTable | null;
  schema: string | undefined;
  failureRules: ClassificationRule[] | undefined;
  /** Where the failure rules came from, to say so. */
  rulesFile: string | undefined;
  /** How often unfinished jobs are judged for conditions; null to record none. */
  conditionsIntervalMs: number | null;
  /** Hosts webhooks may target despite a loopback, private or link-local address. */
  webhookAllowHosts: string[];
  /** The server's URL as people reach it, for links in webhook payloads. */
  publicUrl: string | undefined;
}

/**
 * Serves the ledger until SIGINT or SIGTERM: listens at once (503 while the database is
 * not ready), then runs the projections (and the demo), and on a signal finishes the
 * requests in flight and writes the queued appends before it returns.
 */
export async function serveLedger(ledger: Ledger, settings: ServeSettings): Promise<void> {
  const stop = abortOnSignals();
  const readiness = new DatabaseReadiness(() =>
    settings.migrate ? prepareSchema(ledger.db, settings.schema) : checkSchema(ledger),
  );
  // One try before listening; past that the server listens while it retries, so
  // clients get 503 with Retry-After rather than refused connections.
  await readiness.tryOnce();
  const server = await createServer({
    ledger,
    ...(settings.tokens ? { tokens: settings.tokens } : {}),
    logger: settings.log,
    maxStreams: settings.maxStreams,
    readiness,
    webhooks: {
      allowHosts: settings.webhookAllowHosts,
      ...(settings.publicUrl ? { publicUrl: settings.publicUrl } : {}),
    },
  });
  let runners: { stop(): Promise<void> } | undefined;
  let watcher: { stop(): Promise<void> } | undefined;
  let deliverer: { stop(): Promise<void> } | undefined;
  try {
    const address = await listen(server, ledger, settings);
    announce(ledger, settings, address);
    const ready = await readiness.wait(stop.signal, (error, failures) => {
      // The first failure and then every tenth: enough to see, not a flood.
      if (failures % 10 === 1) {
        process.stderr.write(`Waiting for the database (answering 503): ${error}\n`);
      }
    });
    if (ready) {
      if (readiness.failures > 0) process.stdout.write('The database is ready.\n');
      runners = ledger.runProjections();
      if (settings.conditionsIntervalMs !== null) {
        watcher = ledger.watchConditions({
          intervalMs: settings.conditionsIntervalMs,
          onError: reportUnlessTransient('Judging conditions failed'),
        });
      }
      deliverer = ledger.deliverWebhooks({
        allowHosts: settings.webhookAllowHosts,
        publicUrl: settings.publicUrl ?? address,
        onError: reportUnlessTransient('Delivering webhooks failed'),
      });
      if (settings.demo) await feedDemo(ledger, address, settings.demoItems, stop.signal);
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
    await Promise.all([runners?.stop(), watcher?.stop(), deliverer?.stop()]);
  }
}

/**
 * An `onError` for a background task: a database that is down is said once by the readiness
 * check and retried by the task, so only other errors are worth a line each.
 */
function reportUnlessTransient(what: string): (error: unknown) => void {
  return (error) => {
    if (!isTransient(error)) process.stderr.write(`${what}: ${String(error)}\n`);
  };
}

/**
 * Listens (on a later port when asked to and the port is taken, saying so); then the
 * embedded store's lock names the URL too, so that a read command that finds the store
 * busy reads through this server instead of failing with store_busy.
 */
async function listen(
  server: FastifyInstance,
  ledger: Ledger,
  settings: ServeSettings,
): Promise<string> {
  const { address, port } = await listenOnPort(server, settings);
  if (settings.port !== 0 && port !== settings.port) {
    process.stdout.write(`Port ${settings.port} was in use; took port ${port}.\n`);
  }
  if (ledger.location.store === 'pglite') {
    await advertiseServedUrl(ledger.location.description, address).catch((error: unknown) => {
      // A convenience for other commands: serving goes on without it.
      process.stderr.write(
        `Could not name ${address} in the store's lock file (${String(error)}); read commands elsewhere will get store_busy until they pass --url.\n`,
      );
    });
  }
  return address;
}

/** Says where the server listens, what it serves, and how open it is. */
function announce(ledger: Ledger, settings: ServeSettings, address: string): void {
  const { store, description } = ledger.location;
  const where =
    store === 'pglite' ? `the embedded store at ${description}` : `PostgreSQL ${description}`;
  process.stdout.write(`Headway serving ${where} on ${address} (API: ${address}/openapi.json)\n`);
  process.stdout.write(`Dashboard: ${address}/\n`);
  if (settings.failureRules) {
    process.stdout.write(
      `Failure rules: ${settings.failureRules.length} from ${settings.rulesFile}, recorded with each failure sent without a category.\n`,
    );
  }
  if (!settings.tokens) {
    process.stdout.write(
      'No HEADWAY_TOKENS: every route is open, so the server listens on this machine only.\n',
    );
  }
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
  try {
    const run = await runDemo(ledger, {
      jobId,
      items,
      realTime: true,
      signal,
      print: (line) => {
        if (!signal.aborted) process.stdout.write(`${line}\n`);
      },
    });
    process.stdout.write(`Demo job ${run.jobId} done; still serving (Ctrl-C to stop).\n`);
  } catch (error) {
    // Stopping mid-run leaves the demo job open, as a crashed worker would.
    if (!signal.aborted) throw error;
  }
}
