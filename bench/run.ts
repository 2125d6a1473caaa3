import { performance } from 'node:perf_hooks';
import { formatFaultTable, formatTable } from './report.ts';
import { formatAlertTable, runAlertWorkloads } from './alert-workloads.ts';
import { runFaultWorkloads } from './fault-suite.ts';
import {
  formatPeerTable,
  fullPeerSizes,
  quickPeerSizes,
  runPeerWorkloads,
} from './peer-workloads.ts';
import { createScratchDatabase, defaultDatabaseUrl } from './scratch-database.ts';
import { fullSizes, quickSizes } from './sizes.ts';
import { runSuite } from './suite.ts';
import {
  formatTopologyTable,
  quickTopologySettings,
  runTopologyBench,
  topologySettings,
} from './topology.ts';

/**
 * `npm run bench [-- --quick]`: every workload against PostgreSQL, in a scratch database
 * dropped at the end whatever happens, and against an in-memory PGlite. Progress goes to
 * stderr; stdout is the table and, as its last line, the JSON result.
 *
 * `npm run bench -- --faults`: the fault soak and the idle-streams figure instead.
 *
 * `npm run bench -- --scale` (or `--topology`): appends through HAProxy to 1–3 servers and
 * through PgBouncer, beside one server reached directly; then one server on a primary of
 * its own and one reading from its hot standby, with the standby's lag (bench/topology.ts).
 * `--cases direct,cluster_replica` runs only the cases named.
 *
 * `npm run bench -- --alerts`: the condition watcher's sweep with 10,000 running jobs, and
 * the latency of webhooks from a condition to a receiver on loopback (bench/alert-workloads.ts).
 *
 * `npm run bench -- --peers`: the workloads Headway shares with Emmett, on Headway, Emmett and
 * plain `pg` in rotating rounds (bench/peer-workloads.ts; Emmett is installed on first use).
 */

const quick = process.argv.includes('--quick');
const faults = process.argv.includes('--faults');
const topology = process.argv.includes('--scale') || process.argv.includes('--topology');
const alerts = process.argv.includes('--alerts');
const peers = process.argv.includes('--peers');
const log = (message: string) => process.stderr.write(`bench: ${message}\n`);
const started = performance.now();

const abort = new AbortController();
const creating = createScratchDatabase(process.env.DATABASE_URL ?? defaultDatabaseUrl);

// On Ctrl-C, stop the replay worker and drop the database (FORCE ends our connections).
// Registered before the database exists, so no window leaves one behind.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: dropping the scratch database`);
    abort.abort();
    void creating
      .then((scratch) => scratch.drop())
      .catch((error: unknown) => log(`could not drop the scratch database: ${String(error)}`))
      .finally(() => process.exit(130));
  });
}

const scratch = await creating.catch((error: unknown) => {
  log(`cannot create a scratch database: ${String(error)}`);
  process.exit(1);
});
log(`scratch database ${scratch.name} on PostgreSQL ${scratch.serverVersion}`);

try {
  if (faults) {
    const result = await runFaultWorkloads(scratch, log);
    process.stdout.write(`${formatFaultTable(result)}\n\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (alerts) {
    const result = await runAlertWorkloads(scratch, log, {
      runningJobs: quick ? 1_000 : 10_000,
      notifications: quick ? 20 : 200,
    });
    process.stdout.write(`${formatAlertTable(result)}\n\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (peers) {
    const sizes = quick ? quickPeerSizes : fullPeerSizes;
    const result = await runPeerWorkloads(scratch.url, sizes, log, abort.signal);
    process.stdout.write(`${formatPeerTable(result)}\n\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (topology) {
    const settings = quick ? quickTopologySettings : topologySettings;
    const casesAt = process.argv.indexOf('--cases');
    const only = casesAt > 0 ? (process.argv[casesAt + 1] ?? '').split(',') : undefined;
    const result = await runTopologyBench(scratch, settings, log, abort.signal, only);
    process.stdout.write(`${formatTopologyTable(result)}\n\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    await runAll();
  }
} catch (error) {
  if (!abort.signal.aborted) {
    log(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  }
} finally {
  await scratch.drop();
  log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s; dropped ${scratch.name}`);
}

async function runAll(): Promise<void> {
  const { result, extras } = await runSuite({
    databaseUrl: scratch.url,
    serverVersion: scratch.serverVersion,
    sizes: quick ? quickSizes : fullSizes,
    quick,
    signal: abort.signal,
    log,
  });
  process.stdout.write(`${formatTable(result, extras)}\n\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
