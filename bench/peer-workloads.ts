import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openLedger } from '../src/open-ledger.ts';
import type { Ledger } from '../src/ledger.ts';
import { batchAppend, jobBatches, singleAppend } from './append-workloads.ts';
import { createRawTable, insertRawRows, rawReadColumns, rawSingleInsert } from './baselines.ts';
import { jobIds, toRawRows } from './generate-events.ts';
import { peerEvolve, peerInitial } from './peer-evolve.ts';
import { round } from './report.ts';
import { median, perSecond, rotation } from './stats.ts';

/**
 * `npm run bench -- --peers`: the workloads Headway shares with Emmett (emmett-postgresql,
 * the TypeScript event store on PostgreSQL), run on Headway, on Emmett and by hand with
 * plain `pg`, in the same database, in rounds whose order rotates, medians of the rounds.
 *
 * Emmett runs in a child process (bench/peers/emmett-peer.mjs) from its own small package,
 * installed here on first use: its pinned peer dependencies conflict with Headway's.
 */

/** How much each workload does in one round. */
export interface PeerSizes {
  rounds: number;
  /** Batch append: this many streams, one call each. */
  batchStreams: number;
  eventsPerStream: number;
  /** Single appends: one event per call to one stream. */
  singleEvents: number;
  /** readStream and fold: this many of the streams the batch wrote. */
  readStreams: number;
}

export const fullPeerSizes: PeerSizes = {
  rounds: 3,
  batchStreams: 50,
  eventsPerStream: 1_000,
  singleEvents: 1_000,
  readStreams: 20,
};

export const quickPeerSizes: PeerSizes = {
  rounds: 3,
  batchStreams: 10,
  eventsPerStream: 200,
  singleEvents: 200,
  readStreams: 5,
};

type Peer = 'headway' | 'emmett' | 'plain';
const peers: readonly Peer[] = ['headway', 'emmett', 'plain'];

/** A workload's request, the same for every peer. */
type PeerRequest =
  | { workload: 'batch'; prefix: string; streams: number; eventsPerStream: number }
  | { workload: 'single'; prefix: string; events: number }
  | { workload: 'readStream' | 'fold'; prefix: string; streams: number };

/** Events per second of one peer on one workload, with latencies where calls are timed. */
interface PeerFigure {
  perSec: number;
  p50Ms?: number;
  p99Ms?: number;
}

/** One shared workload: each peer's median, and Headway's ratios to the others. */
export interface PeerRow {
  workload: string;
  headway: PeerFigure;
  emmett: PeerFigure;
  plain: PeerFigure;
  vsEmmett: number;
  vsPlain: number;
}

/** The last line `--peers` prints. */
export interface PeerBenchResult {
  rounds: number;
  sizes: PeerSizes;
  rows: PeerRow[];
  /** Stored bytes per event (table, indexes and TOAST), after every round. */
  bytesPerEvent: Record<Peer, number>;
}

const peersDirectory = fileURLToPath(new URL('./peers/', import.meta.url));

/** Installs bench/peers from its lock file when it is not installed yet. */
function ensurePeersInstalled(log: (message: string) => void): void {
  if (existsSync(`${peersDirectory}node_modules/@event-driven-io/emmett-postgresql`)) return;
  log('installing the peers (bench/peers, npm ci)');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: peersDirectory,
    stdio: ['ignore', process.stderr, process.stderr],
  });
}

/** The Emmett child: one request at a time over IPC. */
class EmmettPeer {
  private constructor(private readonly child: ChildProcess) {}

  static start(databaseUrl: string, signal: AbortSignal): EmmettPeer {
    const child = fork(`${peersDirectory}emmett-peer.mjs`, [], {
      execArgv: ['--import', 'tsx'],
      // The URL goes by environment, not argv, so a password never shows in `ps`.
      env: { ...process.env, PEER_DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      signal,
    });
    child.on('error', () => undefined);
    return new EmmettPeer(child);
  }

  run<T>(request: PeerRequest | { workload: 'close' }): Promise<T> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) =>
        reject(new Error(`the Emmett process exited (${code}) during ${request.workload}`));
      this.child.once('exit', onExit);
      this.child.once('message', (reply: { result?: T; error?: string }) => {
        this.child.off('exit', onExit);
        if (reply.error !== undefined)
          reject(new Error(`Emmett ${request.workload}: ${reply.error}`));
        else resolve(reply.result as T);
      });
      this.child.send(request);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || !this.child.connected) return;
    await this.run({ workload: 'close' }).catch(() => this.child.kill());
  }
}

/**
 * readStream or fold: each stream read once by `read`, and for a fold, folded with the
 * shared evolve; events per second.
 */
async function readEach(
  request: Extract<PeerRequest, { workload: 'readStream' | 'fold' }>,
  read: (streamId: string) => Promise<readonly { type: string }[]>,
): Promise<PeerFigure> {
  let events = 0;
  const started = performance.now();
  for (const streamId of jobIds(request.prefix, request.streams)) {
    const stream = await read(streamId);
    events +=
      request.workload === 'fold' ? stream.reduce(peerEvolve, peerInitial()).events : stream.length;
  }
  return { perSec: perSecond(events, performance.now() - started) };
}

/** Headway through its public API, on the events the generator gives every peer. */
async function runHeadway(ledger: Ledger, request: PeerRequest): Promise<PeerFigure> {
  switch (request.workload) {
    case 'batch':
      return {
        perSec: await batchAppend(
          ledger,
          jobBatches(request.prefix, request.streams, request.eventsPerStream),
        ),
      };
    case 'single':
      return singleAppend(ledger, jobBatches(request.prefix, 1, request.events)[0]!);
    case 'readStream':
    case 'fold':
      return readEach(request, (streamId) => ledger.readStream(streamId));
  }
}

const streamQuery = `select ${rawReadColumns} from raw_events where stream_id = $1 order by version`;

/** The same work by hand: plain inserts and selects on a copy of the events table. */
async function runPlain(client: pg.Client, request: PeerRequest): Promise<PeerFigure> {
  switch (request.workload) {
    case 'batch': {
      const batches = jobBatches(request.prefix, request.streams, request.eventsPerStream).map(
        (job) => toRawRows(job.jobId, job.events),
      );
      const started = performance.now();
      // One statement per stream, as each peer makes one call per stream.
      for (const rows of batches) await insertRawRows(client, rows, rows.length);
      return {
        perSec: perSecond(request.streams * request.eventsPerStream, performance.now() - started),
      };
    }
    case 'single': {
      const [job] = jobBatches(request.prefix, 1, request.events);
      return rawSingleInsert(client, toRawRows(job!.jobId, job!.events));
    }
    case 'readStream':
    case 'fold':
      return readEach(
        request,
        async (streamId) => (await client.query<{ type: string }>(streamQuery, [streamId])).rows,
      );
  }
}

/** The four shared workloads of round `round` for `peer`, whose streams are its own. */
function requestsOf(peer: Peer, roundIndex: number, sizes: PeerSizes): PeerRequest[] {
  const prefix = `${peer}-r${roundIndex}`;
  return [
    {
      workload: 'batch',
      prefix: `${prefix}-batch`,
      streams: sizes.batchStreams,
      eventsPerStream: sizes.eventsPerStream,
    },
    { workload: 'single', prefix: `${prefix}-single`, events: sizes.singleEvents },
    { workload: 'readStream', prefix: `${prefix}-batch`, streams: sizes.readStreams },
    { workload: 'fold', prefix: `${prefix}-batch`, streams: sizes.readStreams },
  ];
}

const labels: Record<PeerRequest['workload'], (sizes: PeerSizes) => string> = {
  batch: (s) =>
    `batch append, ${s.batchStreams} streams × ${s.eventsPerStream.toLocaleString('en-US')} events`,
  single: () => 'single-event appends to one stream',
  readStream: (s) => `readStream of ${s.eventsPerStream.toLocaleString('en-US')}-event streams`,
  fold: (s) => `fold of one ${s.eventsPerStream.toLocaleString('en-US')}-event stream, same evolve`,
};

/** Runs every shared workload on every peer, `sizes.rounds` times, order rotating. */
export async function runPeerWorkloads(
  databaseUrl: string,
  sizes: PeerSizes,
  log: (message: string) => void,
  signal: AbortSignal,
): Promise<PeerBenchResult> {
  ensurePeersInstalled(log);
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  const ledger = await openLedger({ databaseUrl });
  const emmett = EmmettPeer.start(databaseUrl, signal);
  try {
    await createRawTable(client);
    const runners: Record<Peer, (request: PeerRequest) => Promise<PeerFigure>> = {
      headway: (request) => runHeadway(ledger, request),
      emmett: (request) => emmett.run<PeerFigure>(request),
      plain: (request) => runPlain(client, request),
    };
    // A small round first, untimed: schemas created, code compiled, caches warm.
    const warmSizes = {
      ...sizes,
      batchStreams: 4,
      eventsPerStream: 100,
      singleEvents: 50,
      readStreams: 4,
    };
    for (const peer of peers) {
      for (const request of requestsOf(peer, -1, warmSizes)) await runners[peer](request);
    }

    const figures = new Map<string, PeerFigure[]>();
    for (let roundIndex = 0; roundIndex < sizes.rounds; roundIndex++) {
      // Each round starts with another peer, so drift on a shared machine hits all alike;
      // within a round the peers take each workload in turn, so this is not rotatingRounds.
      const order = rotation(peers.length, roundIndex).map((index) => peers[index]!);
      const perPeer = new Map(order.map((peer) => [peer, requestsOf(peer, roundIndex, sizes)]));
      for (let workload = 0; workload < 4; workload++) {
        for (const peer of order) {
          signal.throwIfAborted();
          const request = perPeer.get(peer)![workload]!;
          const figure = await runners[peer](request);
          const key = `${request.workload}:${peer}`;
          figures.set(key, [...(figures.get(key) ?? []), figure]);
          log(
            `round ${roundIndex + 1}, ${request.workload}, ${peer}: ${Math.round(figure.perSec).toLocaleString('en-US')} ev/s`,
          );
        }
      }
    }

    const medianOf = (workload: string, peer: Peer): PeerFigure => {
      const samples = figures.get(`${workload}:${peer}`) ?? [];
      const figure: PeerFigure = { perSec: round.rate(median(samples.map((s) => s.perSec))) };
      if (samples[0]?.p50Ms !== undefined) {
        figure.p50Ms = round.ms(median(samples.map((s) => s.p50Ms!)));
        figure.p99Ms = round.ms(median(samples.map((s) => s.p99Ms!)));
      }
      return figure;
    };
    const rows = requestsOf('headway', 0, sizes).map((request): PeerRow => {
      const [headway, emmettFigure, plain] = peers.map((peer) => medianOf(request.workload, peer));
      return {
        workload: labels[request.workload](sizes),
        headway: headway!,
        emmett: emmettFigure!,
        plain: plain!,
        vsEmmett: round.ratio(headway!.perSec / emmettFigure!.perSec),
        vsPlain: round.ratio(headway!.perSec / plain!.perSec),
      };
    });
    return { rounds: sizes.rounds, sizes, rows, bytesPerEvent: await bytesPerEvent(client) };
  } finally {
    await emmett.close();
    await ledger.close();
    await client.end();
  }
}

/** Each peer's stored bytes per event: its event tables, their indexes and TOAST. */
async function bytesPerEvent(client: pg.Client): Promise<Record<Peer, number>> {
  const sizeOf = async (tables: string, countTable: string): Promise<number> => {
    const { rows } = await client.query<{ bytes: string; events: string }>(
      `select (select coalesce(sum(pg_total_relation_size(c.oid)), 0)
                 from pg_class c
                where c.relkind = 'r' and c.relnamespace = current_schema()::regnamespace
                  and c.relname similar to $1) as bytes,
              (select count(*) from ${countTable}) as events`,
      [tables],
    );
    const { bytes, events } = rows[0]!;
    return Math.round(Number(bytes) / Math.max(1, Number(events)));
  };
  return {
    headway: await sizeOf('(events|events\\_%)', 'events'),
    emmett: await sizeOf('emt\\_messages%', 'emt_messages'),
    plain: await sizeOf('raw\\_events', 'raw_events'),
  };
}

/** The peers' table: each peer's figure and Headway's ratio to Emmett and to plain `pg`. */
export function formatPeerTable(result: PeerBenchResult): string {
  const figure = (value: PeerFigure) =>
    `${value.perSec.toLocaleString('en-US')} ev/s${value.p50Ms === undefined ? '' : ` (p50 ${value.p50Ms} ms)`}`;
  const lines = [
    `| workload (medians of ${result.rounds} rounds) | Headway | Emmett | plain pg | Headway/Emmett | Headway/plain |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...result.rows.map(
      (row) =>
        `| ${row.workload} | ${figure(row.headway)} | ${figure(row.emmett)} | ${figure(row.plain)} | ${row.vsEmmett} | ${row.vsPlain} |`,
    ),
    '',
    `Stored bytes per event: Headway ${result.bytesPerEvent.headway}, Emmett ${result.bytesPerEvent.emmett}, plain ${result.bytesPerEvent.plain}.`,
  ];
  return lines.join('\n');
}
