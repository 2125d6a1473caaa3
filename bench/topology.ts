import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { createClient } from '../src/client/index.ts';
import { openLedger } from '../src/open-ledger.ts';
import { findPgbouncer, startPgbouncer } from '../test/topology/pgbouncer-harness.ts';
import { runBenchChild } from './child.ts';
import type { ScratchDatabase } from './scratch-database.ts';
import { findServerBinaries, startReplicatedCluster } from '../test/topology/replica-cluster.ts';
import type { ReplicatedCluster } from '../test/topology/replica-cluster.ts';
import { percentile } from './stats.ts';
import type { ProducersResult } from './topology-producers.ts';
import {
  cpuOf,
  findHaproxy,
  freePorts,
  backendName,
  backendShares,
  haproxyConfig,
  loadAverage,
  machineCpuMs,
  pidsNamed,
} from './topology-processes.ts';
import { Haproxy, HeadwayServer } from '../test/topology/processes.ts';
import type { BackendShare } from './topology-processes.ts';

/**
 * `npm run bench -- --topology`: appends per second with the same producers through
 * different topologies on one PostgreSQL database, each `headway serve` a process of its
 * own: straight to one server; through HAProxy to one, two and three servers; straight to
 * one server whose database URL is PgBouncer in transaction mode; and straight to one
 * server again, to see how far the machine drifted during the run. During each load a
 * separate reader (this process) reads a job's status at a steady rate. Each case has a
 * schema of its own in the scratch database, dropped after it, so no case inherits
 * another's events or projection backlog.
 */

const producersPath = fileURLToPath(new URL('./topology-producers.ts', import.meta.url));

/** How a case reaches the database. */
type Via = 'direct' | 'haproxy' | 'pgbouncer';

interface CaseSpec {
  key: string;
  label: string;
  via: Via;
  servers: number;
  /**
   * On the benchmark's own primary and hot standby (bench/replica-cluster), instead of the
   * shared server: `primary` reads from the primary (the baseline), `replica` from the standby.
   */
  cluster?: 'primary' | 'replica';
}

const cases: readonly CaseSpec[] = [
  { key: 'direct', label: '1 server, no balancer', via: 'direct', servers: 1 },
  { key: 'haproxy1', label: 'HAProxy -> 1 server', via: 'haproxy', servers: 1 },
  { key: 'haproxy2', label: 'HAProxy -> 2 servers', via: 'haproxy', servers: 2 },
  { key: 'haproxy3', label: 'HAProxy -> 3 servers', via: 'haproxy', servers: 3 },
  { key: 'pgbouncer', label: '1 server via PgBouncer (tx)', via: 'pgbouncer', servers: 1 },
  { key: 'direct2', label: '1 server, no balancer (again)', via: 'direct', servers: 1 },
  {
    key: 'cluster_primary',
    label: '1 server on its own primary',
    via: 'direct',
    servers: 1,
    cluster: 'primary',
  },
  {
    key: 'cluster_replica',
    label: '1 server, reads from a standby',
    via: 'direct',
    servers: 1,
    cluster: 'replica',
  },
];

/** The load of every case. */
export interface TopologySettings {
  producers: number;
  batchEvents: number;
  warmupMs: number;
  durationMs: number;
  statusReadsPerSec: number;
  /** Each server's PostgreSQL pool (Headway's default) and PgBouncer's pool size. */
  poolSize: number;
}

export const topologySettings: TopologySettings = {
  producers: 12,
  batchEvents: 200,
  warmupMs: 5_000,
  durationMs: 15_000,
  statusReadsPerSec: 20,
  poolSize: 10,
};

export const quickTopologySettings: TopologySettings = {
  ...topologySettings,
  warmupMs: 2_000,
  durationMs: 5_000,
};

/** CPU seconds spent inside the measurement window, by whom. */
export interface CpuFigures {
  /** Busy share of the machine (all cores) in the window, percent of `cores`. */
  machineBusyPct: number | null;
  /** 1-minute load average at the end of the window. */
  loadAverage1m: number | null;
  /** Each `headway serve` process. */
  serversS: number[];
  /** Every `postgres` process on the machine (shared: other users' backends count too). */
  postgresS: number;
  haproxyS: number | null;
  pgbouncerS: number | null;
  /** The producers' process (HTTP clients, event generation). */
  producersS: number;
  /** This process: the status reader and the sampling. */
  readerS: number;
}

export interface TopologyCaseResult {
  key: string;
  label: string;
  servers: number;
  eventsPerSec: number;
  events: number;
  batches: number;
  /** eventsPerSec over the first direct case's. */
  vsDirect: number | null;
  batchP50Ms: number;
  batchP99Ms: number;
  /** Failed append attempts the clients retried. */
  retries: number;
  status: { p50Ms: number; p99Ms: number; reads: number; errors: number };
  /** Requests each server took through HAProxy over the whole case (with the warm-up). */
  shares: BackendShare[] | null;
  /** The standby's lag, sampled every 100 ms in the window (replica case only). */
  replicaLag: ReplicaLagFigures | null;
  cpu: CpuFigures;
}

/** Percentiles of the standby's lag as `ledger.replication()` reports it. */
export interface ReplicaLagFigures {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  p50Bytes: number;
  p99Bytes: number;
  /** From an acknowledged append on the primary to the standby having replayed it. */
  replayP50Ms: number;
  replayP99Ms: number;
  samples: number;
}

export interface TopologyBenchResult {
  date: string;
  cores: number;
  cpuModel: string;
  postgres: string;
  settings: TopologySettings;
  cases: TopologyCaseResult[];
  skipped: string[];
}

/** Processes to kill at once if the run is interrupted (a SIGINT handler exits soon after). */
const running = new Set<number>();

function killRunning(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  running.clear();
}

/** Runs every case in turn against `scratch`; every process is stopped whatever happens. */
export async function runTopologyBench(
  scratch: ScratchDatabase,
  settings: TopologySettings,
  log: (line: string) => void,
  signal: AbortSignal,
  /** Only the cases with these keys (`--cases direct,cluster_replica`); all by default. */
  only?: readonly string[],
): Promise<TopologyBenchResult> {
  signal.addEventListener('abort', killRunning, { once: true });
  const unknown = only?.filter((key) => !cases.some((spec) => spec.key === key)) ?? [];
  if (unknown.length > 0) {
    throw new Error(
      `expected case keys among ${cases.map((spec) => spec.key).join(', ')}, received ${unknown.join(', ')}`,
    );
  }
  const haproxy = findHaproxy();
  const pgbouncer = findPgbouncer();
  const results: TopologyCaseResult[] = [];
  const skipped: string[] = [];
  const serverBinaries = await findServerBinaries();
  let cluster: ReplicatedCluster | null = null;
  try {
    for (const spec of cases.filter((spec) => !only || only.includes(spec.key))) {
      if (signal.aborted) throw new Error('interrupted');
      if (spec.cluster && serverBinaries === null) {
        skipped.push(`${spec.key}: no PostgreSQL server binaries (pg_config --bindir)`);
        continue;
      }
      if (spec.cluster && cluster === null) {
        log("topology: starting a primary and a hot standby of the benchmark's own");
        // Stock durability settings: the figures are those of a server that syncs its WAL.
        cluster = await startReplicatedCluster();
      }
      if (spec.via === 'haproxy' && haproxy === null) {
        skipped.push(`${spec.key}: no haproxy (apt-get install haproxy)`);
        continue;
      }
      if (spec.via === 'pgbouncer' && pgbouncer === null) {
        skipped.push(`${spec.key}: no pgbouncer (apt-get install pgbouncer)`);
        continue;
      }
      log(`topology: ${spec.label}`);
      const target = spec.cluster ? clusterTarget(cluster!, spec.cluster) : { url: scratch.url };
      const result = await runCase(spec, target, settings, { haproxy, pgbouncer }, log, signal);
      // The cluster's cases compare with the cluster's own primary, the rest with `direct`.
      const baseline = results.find(
        (row) => row.key === (spec.cluster ? 'cluster_primary' : 'direct'),
      );
      result.vsDirect = baseline ? result.eventsPerSec / baseline.eventsPerSec : null;
      results.push(result);
      log(
        `topology: ${spec.label}: ${Math.round(result.eventsPerSec)} events/s, status p50 ${result.status.p50Ms.toFixed(1)} ms p99 ${result.status.p99Ms.toFixed(1)} ms, machine ${result.cpu.machineBusyPct?.toFixed(0) ?? '?'}% busy`,
      );
      // Let the load average and the database settle a little between cases.
      await delay(2_000);
    }
  } finally {
    await cluster?.stop();
  }
  return {
    date: new Date().toISOString(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    postgres: scratch.serverVersion,
    settings,
    cases: results,
    skipped,
  };
}

/** Where a case's servers write, and where they read when it is a replica case. */
interface CaseTarget {
  url: string;
  readUrl?: string;
}

function clusterTarget(cluster: ReplicatedCluster, reads: 'primary' | 'replica'): CaseTarget {
  return reads === 'replica'
    ? { url: cluster.primaryUrl, readUrl: cluster.standbyUrl }
    : { url: cluster.primaryUrl };
}

async function runCase(
  spec: CaseSpec,
  scratch: CaseTarget,
  settings: TopologySettings,
  binaries: { haproxy: string | null; pgbouncer: string | null },
  log: (line: string) => void,
  signal: AbortSignal,
): Promise<TopologyCaseResult> {
  const schema = `topo_${spec.key}_${randomBytes(3).toString('hex')}`;
  // Migrated here, once: `headway serve` never migrates.
  const ledger = await openLedger({ databaseUrl: scratch.url, schema, poolSize: 2 });
  await ledger.close();
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    let databaseUrl = scratch.url;
    let serveArgs: string[] = [];
    let pgbouncerPids: number[] = [];
    if (spec.via === 'pgbouncer') {
      const before = new Set(await pidsNamed('pgbouncer'));
      const pooler = await startPgbouncer(binaries.pgbouncer!, scratch.url, {
        poolSize: settings.poolSize,
      });
      cleanups.push(() => pooler.stop());
      pgbouncerPids = (await pidsNamed('pgbouncer')).filter((pid) => !before.has(pid));
      for (const pid of pgbouncerPids) running.add(pid);
      databaseUrl = pooler.url;
      serveArgs = ['--database-pooler', 'transaction', '--listen-database-url', scratch.url];
    }
    if (scratch.readUrl) serveArgs = ['--read-database-url', scratch.readUrl];
    const ports = await freePorts(spec.servers + 2);
    const servers = ports.slice(0, spec.servers).map(
      (port, index) =>
        new HeadwayServer(`s${index + 1}`, port, databaseUrl, {
          globalArgs: ['--schema', schema],
          serveArgs,
        }),
    );
    cleanups.push(() => Promise.all(servers.map((server) => server.stop())));
    // One at a time: each compiles the sources through tsx, which is CPU-heavy.
    for (const server of servers) {
      await server.start();
      running.add(server.pid!);
    }
    let entry = servers[0]!.url;
    let balancer: Haproxy | null = null;
    if (spec.via === 'haproxy') {
      const folder = await mkdtemp(join(tmpdir(), 'headway-bench-haproxy-'));
      cleanups.push(() => rm(folder, { recursive: true, force: true }));
      const [port, statsPort] = [ports[spec.servers]!, ports[spec.servers + 1]!];
      balancer = await Haproxy.start(
        binaries.haproxy!,
        folder,
        haproxyConfig(port, servers, statsPort),
        statsPort,
      );
      const started = balancer;
      cleanups.push(() => started.stop());
      running.add(balancer.pid!);
      await balancer.waitUntilUp(
        backendName,
        servers.map((server) => server.name),
        15_000,
      );
      entry = `http://127.0.0.1:${port}`;
    }
    if (signal.aborted) throw new Error('interrupted');

    // The producers' clock: the child has a few seconds to start, then warms up.
    const prefix = `topo-${spec.key}`;
    const startAt = Date.now() + 4_000;
    const windowStart = startAt + settings.warmupMs;
    const windowEnd = windowStart + settings.durationMs;
    const producing = runBenchChild<ProducersResult>(producersPath, {
      env: {
        BENCH_TOPO_URL: entry,
        BENCH_TOPO_PRODUCERS: String(settings.producers),
        BENCH_TOPO_BATCH: String(settings.batchEvents),
        BENCH_TOPO_START_AT: String(startAt),
        BENCH_TOPO_WARMUP_MS: String(settings.warmupMs),
        BENCH_TOPO_DURATION_MS: String(settings.durationMs),
        BENCH_TOPO_PREFIX: prefix,
      },
      // Bounded: the run, plus the client's own bounds on a batch.
      signal: AbortSignal.any([
        signal,
        AbortSignal.timeout(settings.warmupMs + settings.durationMs + 120_000),
      ]),
    });
    // Awaited below; a failure meanwhile must not be an unhandled rejection.
    producing.catch(() => undefined);

    await delay(Math.max(0, windowStart - Date.now()));
    const serverPids = servers.map((server) => server.pid!);
    const haproxyPids = balancer ? [balancer.pid!] : [];
    const postgresBefore = await cpuOf(await pidsNamed('postgres'));
    const ownBefore = await cpuOf([...serverPids, ...haproxyPids, ...pgbouncerPids]);
    const machineBefore = await machineCpuMs();
    const readerBefore = process.cpuUsage();

    const jobIds = Array.from({ length: settings.producers }, (_, index) => `${prefix}-p${index}`);
    const [reads, replicaLag] = await Promise.all([
      readStatuses(entry, jobIds, settings.statusReadsPerSec, windowEnd),
      scratch.readUrl ? sampleReplicaLag(scratch, schema, windowEnd) : null,
    ]);

    await delay(Math.max(0, windowEnd - Date.now()));
    const reader = process.cpuUsage(readerBefore);
    const machineAfter = await machineCpuMs();
    const ownAfter = await cpuOf([...serverPids, ...haproxyPids, ...pgbouncerPids]);
    const postgresAfter = await cpuOf(await pidsNamed('postgres'));
    const load = await loadAverage();

    const appends = await producing;
    const shares = balancer ? await backendShares(balancer).catch(() => null) : null;

    const delta = (pids: readonly number[]) =>
      pids.reduce((sum, pid) => sum + ((ownAfter.get(pid) ?? 0) - (ownBefore.get(pid) ?? 0)), 0) /
      1000;
    let postgresMs = 0;
    // Backends that started in the window count whole; ones that ended in it are lost.
    for (const [pid, ms] of postgresAfter) postgresMs += ms - (postgresBefore.get(pid) ?? 0);
    const busyPct =
      machineBefore && machineAfter && machineAfter.total > machineBefore.total
        ? (100 * (machineAfter.busy - machineBefore.busy)) /
          (machineAfter.total - machineBefore.total)
        : null;
    return {
      key: spec.key,
      label: spec.label,
      servers: spec.servers,
      eventsPerSec: appends.eventsPerSec,
      events: appends.events,
      batches: appends.batches,
      vsDirect: null,
      batchP50Ms: appends.batchP50Ms,
      batchP99Ms: appends.batchP99Ms,
      retries: appends.retries,
      status: reads,
      shares,
      replicaLag,
      cpu: {
        machineBusyPct: busyPct,
        loadAverage1m: load,
        serversS: serverPids.map((pid) => delta([pid])),
        postgresS: postgresMs / 1000,
        haproxyS: balancer ? delta(haproxyPids) : null,
        pgbouncerS: spec.via === 'pgbouncer' ? delta(pgbouncerPids) : null,
        producersS: appends.cpuMs / 1000,
        readerS: (reader.user + reader.system) / 1e6,
      },
    };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`topology: cleanup: ${String(error)}`));
    }
    running.clear();
    await dropSchema(scratch.url, schema).catch((error: unknown) =>
      log(`topology: could not drop schema ${schema}: ${String(error)}`),
    );
  }
}

/**
 * The standby's lag every 100 ms until `until`, from a ledger of this process, two ways:
 * as `ledger.replication()` reports it, and as a probe sees it (an append of its own on the
 * primary, then `readsAfter` until the standby has replayed it).
 */
async function sampleReplicaLag(
  target: CaseTarget,
  schema: string,
  until: number,
): Promise<ReplicaLagFigures> {
  const ledger = await openLedger({
    databaseUrl: target.url,
    readDatabaseUrl: target.readUrl!,
    schema,
    poolSize: 2,
    migrate: false,
  });
  const lagMs: number[] = [];
  const lagBytes: number[] = [];
  const replayMs: number[] = [];
  const probe = `lag-probe-${randomBytes(3).toString('hex')}`;
  try {
    await ledger.append(probe, [
      { type: 'job.started', data: { name: 'lag probe', kind: 'probe', project: 'bench' } },
    ]);
    for (let index = 0; Date.now() < until; index++) {
      const status = await ledger.replication();
      if (status) {
        lagMs.push(status.lagMs);
        lagBytes.push(status.lagBytes);
      }
      const { cursor } = await ledger.append(probe, [
        { type: 'item.completed', data: { itemId: `p${index}` } },
      ]);
      const seen = await ledger.readsAfter(cursor, { timeoutMs: 10_000 });
      replayMs.push(seen.source === 'replica' ? seen.waitedMs : Number.POSITIVE_INFINITY);
      await delay(100);
    }
  } finally {
    await ledger.close();
  }
  for (const list of [lagMs, lagBytes, replayMs]) list.sort((a, b) => a - b);
  return {
    p50Ms: percentile(lagMs, 0.5),
    p99Ms: percentile(lagMs, 0.99),
    maxMs: lagMs.at(-1) ?? 0,
    p50Bytes: percentile(lagBytes, 0.5),
    p99Bytes: percentile(lagBytes, 0.99),
    replayP50Ms: percentile(replayMs, 0.5),
    replayP99Ms: percentile(replayMs, 0.99),
    samples: lagMs.length,
  };
}

/** Status reads of the producers' jobs in turn, at `perSec`, one at a time, until `until`. */
async function readStatuses(
  entry: string,
  jobIds: readonly string[],
  perSec: number,
  until: number,
): Promise<{ p50Ms: number; p99Ms: number; reads: number; errors: number }> {
  const client = createClient({ url: entry, requestTimeoutMs: 10_000 });
  const latencies: number[] = [];
  let errors = 0;
  const interval = 1000 / perSec;
  let next = performance.now();
  for (let index = 0; Date.now() < until; index++) {
    const started = performance.now();
    try {
      const status = await client.status(jobIds[index % jobIds.length]!);
      if (status === null) errors += 1;
      else latencies.push(performance.now() - started);
    } catch {
      errors += 1;
    }
    next += interval;
    const wait = next - performance.now();
    // A steady rate: a slow answer delays the next read, never causes a burst.
    if (wait > 0) await delay(wait);
    else next = performance.now();
  }
  await client.close();
  latencies.sort((a, b) => a - b);
  return {
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    reads: latencies.length,
    errors,
  };
}

async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

/** The figures as a table for the terminal, with the machine's bound under it. */
export function formatTopologyTable(result: TopologyBenchResult): string {
  const { settings } = result;
  const rows = result.cases.map((row) => {
    const cpu = row.cpu;
    const proxy =
      cpu.haproxyS !== null
        ? `haproxy ${cpu.haproxyS.toFixed(1)}`
        : cpu.pgbouncerS !== null
          ? `pgbouncer ${cpu.pgbouncerS.toFixed(1)}`
          : '';
    return [
      row.label,
      Math.round(row.eventsPerSec).toLocaleString('en-US'),
      row.vsDirect === null ? '' : row.vsDirect.toFixed(2),
      `${row.batchP50Ms.toFixed(1)} / ${row.batchP99Ms.toFixed(1)}`,
      `${row.status.p50Ms.toFixed(1)} / ${row.status.p99Ms.toFixed(1)} (${row.status.reads}${row.status.errors ? `, ${row.status.errors} errors` : ''})`,
      cpu.machineBusyPct === null ? '?' : `${cpu.machineBusyPct.toFixed(0)}%`,
      [
        `servers ${cpu.serversS.map((s) => s.toFixed(1)).join('+')}`,
        `postgres ${cpu.postgresS.toFixed(1)}`,
        proxy,
        `producers ${cpu.producersS.toFixed(1)}`,
        `reader ${cpu.readerS.toFixed(1)}`,
      ]
        .filter(Boolean)
        .join(', '),
      cpu.loadAverage1m?.toFixed(2) ?? '?',
      String(row.retries),
    ];
  });
  const header = [
    'topology',
    'appends events/s',
    'vs direct',
    'batch p50 / p99 ms',
    'status p50 / p99 ms (reads)',
    'machine CPU busy',
    `CPU s in the ${settings.durationMs / 1000} s window`,
    'load 1m',
    'retries',
  ];
  const widths = header.map((cell, column) =>
    Math.max(cell.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  const lines = [
    `Topology: ${settings.producers} producers (createClient), batches of ${settings.batchEvents} events, one batch in flight each; ${settings.warmupMs / 1000} s warm-up, ${settings.durationMs / 1000} s measured per case; status reads (GET /v1/jobs/:id) at ${settings.statusReadsPerSec}/s from a separate process; one PostgreSQL ${result.postgres} database, a schema per case; server pool ${settings.poolSize}, PgBouncer pool ${settings.poolSize}.`,
    '',
    line(header),
    line(widths.map((width) => '-'.repeat(width))),
    ...rows.map(line),
    '',
    `Bound: CPU. ${result.cores} cores (${result.cpuModel}) shared by every headway serve, PostgreSQL, HAProxy/PgBouncer, the producers and the reader (all on 127.0.0.1); "machine CPU busy" is the share of all ${result.cores} cores busy in the window (other tenants of this shared machine included), so added servers add processes, not cores.`,
  ];
  for (const row of result.cases) {
    if (row.shares) {
      lines.push(
        `${row.label}: requests per server ${row.shares.map((share) => `${share.server} ${share.requests}${share.responses5xx ? ` (${share.responses5xx} 5xx)` : ''}`).join(', ')}`,
      );
    }
  }
  for (const row of result.cases) {
    const lag = row.replicaLag;
    if (lag) {
      lines.push(
        `${row.label}: an append is readable on the standby after p50 ${lag.replayP50Ms} ms, p99 ${lag.replayP99Ms} ms; reported lag (ledger.replication) p50 ${lag.p50Ms} ms, p99 ${lag.p99Ms} ms, max ${lag.maxMs} ms, ${Math.round(lag.p50Bytes).toLocaleString('en-US')} / ${Math.round(lag.p99Bytes).toLocaleString('en-US')} bytes of WAL at p50 / p99 (${lag.samples} samples, every 100 ms)`,
      );
    }
  }
  const replicaCases = result.cases.filter((row) => row.key.startsWith('cluster'));
  if (replicaCases.length > 0) {
    lines.push(
      'The two "own primary" cases run on a primary and a streaming standby the benchmark starts (initdb, pg_basebackup -R) with stock durability settings; their "vs direct" is against "1 server on its own primary".',
    );
  }
  for (const skip of result.skipped) lines.push(`skipped ${skip}`);
  return lines.join('\n');
}
