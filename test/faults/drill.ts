import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import type { ScratchDatabase } from '../../bench/scratch-database.ts';
import { cliEnv, headwayBin } from '../cli-runner.ts';
import { TcpProxy } from './tcp-proxy.ts';

/** `headway serve` in a child process, as operators run it, watched for an exit. */
export class ServeProcess {
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly address: string,
  ) {
    child.on('exit', (code, signal) => {
      this.exitCode = code;
      this.exitSignal = signal;
    });
  }

  /** Starts `headway serve` on a free port against `databaseUrl` and waits until it listens. */
  static async start(
    databaseUrl: string,
    extraArgs: readonly string[] = [],
  ): Promise<ServeProcess> {
    const child = spawn(process.execPath, [headwayBin, 'serve', '--port', '0', ...extraArgs], {
      env: { ...cliEnv(), DATABASE_URL: databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => (output += chunk.toString());
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const match = /Headway serving .* on (http:\/\/[^\s]+) /.exec(output);
      if (match) {
        const served = new ServeProcess(child, match[1]!);
        served.output = output;
        child.stdout.on('data', (chunk: Buffer) => (served.output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (served.output += chunk.toString()));
        return served;
      }
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`headway serve did not start:\n${output}`);
      }
      await delay(50);
    }
  }

  /** True while the process runs. */
  get alive(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** Stops it: SIGTERM, then SIGKILL if it has not exited within 20 s. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

/** What one producer's request came back with. */
type Outcome = number | 'network' | 'timeout';

/** Producers appending batches over HTTP, each retrying a batch with the same ids. */
export class AppendLoad {
  /** Answers by status (and network failures), over every request. */
  readonly outcomes = new Map<Outcome, number>();
  /** Event ids the server acknowledged with a 2xx. */
  readonly acknowledged = new Set<string>();
  /** Each producer's time of its last acknowledged batch. */
  readonly lastAck: number[];
  readonly jobIds: string[];
  private stopping = false;
  private running: Promise<void>[] = [];

  constructor(
    private readonly address: string,
    producers: number,
    private readonly batchEvents: number,
    /** A pause between a producer's batches, to keep the load steady rather than saturating. */
    private readonly pauseMs: number,
  ) {
    const run = randomUUID().slice(0, 8);
    this.jobIds = Array.from({ length: producers }, (_, index) => `drill-${run}-${index}`);
    this.lastAck = this.jobIds.map(() => 0);
  }

  /** Starts every producer: it starts its job, then appends batches until `stop`. */
  start(): void {
    this.running = this.jobIds.map((jobId, index) => this.produce(jobId, index));
  }

  /** Lets each producer finish the batch it is on (until it is stored), then stops. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  /** Requests answered with something other than 2xx, 409 or 503. */
  unexpected(): [Outcome, number][] {
    return [...this.outcomes].filter(([outcome]) => {
      if (typeof outcome !== 'number') return true;
      return !((outcome >= 200 && outcome < 300) || outcome === 409 || outcome === 503);
    });
  }

  /** Waits until every producer has had a batch acknowledged after `since`; the time it took. */
  async recovered(since: number, boundMs: number): Promise<number> {
    const deadline = since + boundMs;
    while (this.lastAck.some((at) => at <= since)) {
      if (Date.now() > deadline) {
        throw new Error(`appends did not recover within ${boundMs} ms of the fault's end`);
      }
      await delay(20);
    }
    return Math.max(...this.lastAck) - since;
  }

  private async produce(jobId: string, index: number): Promise<void> {
    await this.send(jobId, 'POST', '/v1/jobs', {
      jobId,
      eventId: randomUUID(),
      name: 'drill',
      kind: 'drill',
      project: 'faults',
    });
    this.lastAck[index] = Date.now();
    let item = 0;
    while (!this.stopping) {
      const events = Array.from({ length: this.batchEvents }, () => ({
        type: 'item.completed',
        eventId: randomUUID(),
        data: { itemId: `item-${item++}`, durationMs: 5 },
      }));
      await this.send(jobId, 'POST', `/v1/jobs/${jobId}/events`, { events });
      for (const event of events) this.acknowledged.add(event.eventId);
      this.lastAck[index] = Date.now();
      if (this.pauseMs > 0) await delay(this.pauseMs);
    }
  }

  /** Sends one request until a 2xx (or a 409 for the job's start, stored by an earlier try). */
  private async send(jobId: string, method: string, path: string, body: unknown): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let outcome: Outcome;
      try {
        const response = await fetch(`${this.address}${path}`, {
          method,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          // Far above every bound of the server: a request that takes this long hung.
          signal: AbortSignal.timeout(60_000),
        });
        await response.arrayBuffer();
        outcome = response.status;
      } catch (error) {
        outcome = (error as Error).name === 'TimeoutError' ? 'timeout' : 'network';
      }
      this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
      if (typeof outcome === 'number' && outcome >= 200 && outcome < 300) return;
      // A retried job start finds its own stream: stored once already.
      if (outcome === 409 && path === '/v1/jobs') return;
      if (outcome === 409 || outcome === 400) {
        throw new Error(`job ${jobId}: ${method} ${path} answered ${outcome}`);
      }
      await delay(Math.min(1_000, 50 * 2 ** Math.min(attempt, 4)));
    }
  }
}

/** Figures of one drill, for the test's assertions and the benchmark's report. */
export interface DrillReport {
  requests: number;
  outcomes: Record<string, number>;
  unexpected: [string, number][];
  acknowledged: number;
  stored: number;
  missing: number;
  /** Rows beyond one per event id, and streams whose versions have gaps. */
  duplicates: number;
  gaps: number;
  backendsTerminated: number;
  /** Per fault: how long after it ended every producer had a batch stored again. */
  recoveryMs: Record<string, number>;
  serverAlive: boolean;
}

/** How long each fault lasts and how many rounds run. */
export interface DrillPlan {
  terminations: number;
  cutMs: number;
  blackholeMs: number;
  /** The whole sequence, repeated (the benchmark's soak repeats it). */
  rounds: number;
  /** How long after a fault's end appends must have recovered. */
  recoveryBoundMs: number;
  producers: number;
  batchEvents: number;
  pauseMs: number;
}

/** The plan the fault suite runs: the issue's own figures. */
export const standardPlan: DrillPlan = {
  terminations: 5,
  cutMs: 10_000,
  blackholeMs: 10_000,
  rounds: 1,
  recoveryBoundMs: 60_000,
  producers: 8,
  batchEvents: 50,
  pauseMs: 20,
};

/**
 * Runs a server against `database` through a proxy, puts it under a steady HTTP append
 * load, then terminates its backends, cuts the network and black-holes it, and counts what
 * clients were told against what was stored. It takes a `ScratchDatabase`, not a URL, so
 * the backends it terminates are always those of a database made for it.
 */
export async function runDrill(
  database: ScratchDatabase,
  plan: DrillPlan,
  log: (line: string) => void = () => undefined,
): Promise<DrillReport & { server: ServeProcess; proxy: TcpProxy; jobIds: string[] }> {
  const databaseUrl = database.url;
  const target = new URL(databaseUrl);
  const proxy = await TcpProxy.start(Number(target.port || 5432), target.hostname);
  const viaProxy = new URL(databaseUrl);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  const server = await ServeProcess.start(viaProxy.toString());
  const load = new AppendLoad(server.address, plan.producers, plan.batchEvents, plan.pauseMs);
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const recoveryMs: Record<string, number> = {};
  let backendsTerminated = 0;
  try {
    load.start();
    await load.recovered(Date.now(), plan.recoveryBoundMs);
    for (let round = 1; round <= plan.rounds; round++) {
      for (let kill = 1; kill <= plan.terminations; kill++) {
        await delay(1_500);
        // Only the backends of the drill's own database: never anyone else's.
        const { rowCount } = await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
            where datname = $1 and pid <> pg_backend_pid()`,
          [database.name],
        );
        backendsTerminated += rowCount ?? 0;
        const ended = Date.now();
        recoveryMs[`round ${round}: termination ${kill}`] = await load.recovered(
          ended,
          plan.recoveryBoundMs,
        );
        log(`round ${round}: termination ${kill} (${rowCount} backends)`);
      }
      for (const [mode, ms] of [
        ['reset', plan.cutMs],
        ['blackhole', plan.blackholeMs],
      ] as const) {
        await delay(1_500);
        proxy.setMode(mode);
        await delay(ms);
        proxy.setMode('pass');
        const ended = Date.now();
        recoveryMs[`round ${round}: ${mode === 'reset' ? 'network cut' : 'black hole'}`] =
          await load.recovered(ended, plan.recoveryBoundMs);
        log(`round ${round}: ${mode} for ${ms} ms`);
      }
    }
  } finally {
    await load.stop();
    await admin.end();
  }
  const stored = await storedEvents(databaseUrl, load.jobIds);
  const storedIds = new Set(stored.ids);
  let missing = 0;
  for (const id of load.acknowledged) if (!storedIds.has(id)) missing += 1;
  const outcomes = Object.fromEntries([...load.outcomes].map(([key, count]) => [key, count]));
  return {
    requests: [...load.outcomes.values()].reduce((sum, count) => sum + count, 0),
    outcomes,
    unexpected: load.unexpected().map(([key, count]) => [String(key), count]),
    acknowledged: load.acknowledged.size,
    stored: stored.ids.length,
    missing,
    duplicates: stored.ids.length - storedIds.size,
    gaps: stored.gaps,
    backendsTerminated,
    recoveryMs,
    serverAlive: server.alive,
    server,
    proxy,
    jobIds: load.jobIds,
  };
}

/** The item events of the drill's jobs, read directly, and how many streams have gaps. */
async function storedEvents(
  databaseUrl: string,
  jobIds: readonly string[],
): Promise<{ ids: string[]; gaps: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ event_id: string; stream_id: string; version: string }>(
      `select event_id, stream_id, version from events
        where stream_id = any($1) order by stream_id, version`,
      [jobIds],
    );
    let gaps = 0;
    let previous = { stream: '', version: 0 };
    for (const row of rows) {
      const version = Number(row.version);
      const expected: number = previous.stream === row.stream_id ? previous.version + 1 : 1;
      if (version !== expected) gaps += 1;
      previous = { stream: row.stream_id, version };
    }
    return {
      ids: rows.filter((row) => row.version !== '1').map((row) => row.event_id),
      gaps,
    };
  } finally {
    await client.end();
  }
}
