import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export { findHaproxy, freePort, freePorts, haproxyConfig } from './haproxy.ts';
export type { Frontend } from './haproxy.ts';

// The processes of the topology tests and the topology benchmark alike (no vitest here):
// `headway serve` on a port of the caller's choosing (so a restarted server comes back
// where the balancer expects it) and HAProxy in front.

/** The `headway` command from its sources (tsx), as the CLI tests run it. */
const headwaySource = fileURLToPath(new URL('../headway-source.mjs', import.meta.url));

/** Variables that would point a server elsewhere than its flags say. */
const ambientSettings = [
  'DATABASE_URL',
  'HEADWAY_DATABASE_URL',
  'HEADWAY_SCHEMA',
  'HEADWAY_DATABASE_POOLER',
  'HEADWAY_LISTEN_DATABASE_URL',
  'HEADWAY_READ_DATABASE_URL',
  'HEADWAY_URL',
  'HEADWAY_TOKEN',
  'HEADWAY_TOKENS',
  'PORT',
];

/** The end of a process's output, for error messages. */
function tail(output: string, chars = 3_000): string {
  return output.length > chars ? `…${output.slice(-chars)}` : output;
}

/** Spawns a child that collects its output, watched for its exit. */
class Child {
  output = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<void>;

  constructor(readonly process: ChildProcess) {
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      // Bounded: only the end is ever shown.
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    process.stdout?.on('data', collect);
    process.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      process.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (!this.alive) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL, and waits for the exit. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.process.kill('SIGKILL');
    await this.exited;
  }
}

/** How a `HeadwayServer` is started, beyond its port. */
export interface HeadwayServerOptions {
  /** Options before `serve` (`--schema …`). */
  globalArgs?: readonly string[];
  /** Options after `serve --port N` (`--database-pooler …`, `--read-database-url …`). */
  serveArgs?: readonly string[];
}

/** `headway serve` on one port against a PostgreSQL URL; `start` again after a kill. */
export class HeadwayServer {
  private child: Child | null = null;
  /** Every output of every run of this server, for error messages. */
  private earlier = '';

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly databaseUrl: string,
    private readonly options: HeadwayServerOptions = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get alive(): boolean {
    return this.child?.alive ?? false;
  }

  /** The running process's id (the `node` that holds the server's sockets). */
  get pid(): number | undefined {
    return this.alive ? this.child!.process.pid : undefined;
  }

  get output(): string {
    return tail(this.earlier + (this.child?.output ?? ''));
  }

  /** Spawns the server and waits until it listens and `/health` answers 200. */
  async start(boundMs = 60_000): Promise<void> {
    if (this.alive) throw new Error(`${this.name} is running already`);
    if (this.child) this.earlier += this.child.output;
    const env = { ...process.env };
    for (const name of ambientSettings) delete env[name];
    const { globalArgs = [], serveArgs = [] } = this.options;
    const child = new Child(
      spawn(
        process.execPath,
        [headwaySource, ...globalArgs, 'serve', '--port', String(this.port), ...serveArgs],
        // The schema is there already (the caller migrated it): no server migrates.
        { env: { ...env, DATABASE_URL: this.databaseUrl }, stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.child = child;
    const deadline = Date.now() + boundMs;
    for (;;) {
      if (!child.alive) throw new Error(`${this.name} exited while starting:\n${this.output}`);
      if (Date.now() > deadline) {
        await child.kill();
        throw new Error(`${this.name} was not healthy within ${boundMs} ms:\n${this.output}`);
      }
      if (child.output.includes('Headway serving')) {
        const status = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(5_000) })
          .then(async (response) => {
            await response.arrayBuffer();
            return response.status;
          })
          .catch(() => 0);
        if (status === 200) return;
      }
      await delay(100);
    }
  }

  /** SIGKILL: no shutdown, its connections die with it. */
  async kill(): Promise<void> {
    await this.child?.kill();
  }

  /** SIGTERM (it finishes requests and flushes), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    await this.child?.stop(15_000);
  }
}

/** One row of HAProxy's statistics: a frontend, a backend or one server of a backend. */
export interface HaproxyStat {
  proxy: string;
  server: string;
  status: string;
  /** Sessions (requests, in HTTP mode with keep-alive: connections) in total. */
  sessions: number;
  /** HTTP answers of every class (health checks are not counted). */
  responses: number;
  responses5xx: number;
  /** Connection retries and redispatches HAProxy made. */
  retries: number;
  redispatches: number;
  /** Failed connections to the server. */
  connectionErrors: number;
  /** Failed answers (a server that died mid-request). */
  responseErrors: number;
}

/** `haproxy -f <cfg> -db` in the foreground; `stop` ends it. */
export class Haproxy {
  private constructor(
    private readonly child: Child,
    private readonly statsPort: number,
  ) {}

  static async start(
    binary: string,
    folder: string,
    config: string,
    statsPort: number,
  ): Promise<Haproxy> {
    const file = join(folder, 'haproxy.cfg');
    await writeFile(file, config);
    // Checked first, so that a bad configuration fails with HAProxy's own words.
    execFileSync(binary, ['-c', '-f', file], { encoding: 'utf8', stdio: 'pipe' });
    const child = new Child(
      spawn(binary, ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const haproxy = new Haproxy(child, statsPort);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!child.alive) throw new Error(`haproxy exited:\n${tail(child.output)}`);
      if ((await haproxy.stats().catch(() => null)) !== null) return haproxy;
      if (Date.now() > deadline) {
        await child.kill();
        throw new Error(`haproxy did not answer within 15 s:\n${tail(child.output)}`);
      }
      await delay(50);
    }
  }

  get alive(): boolean {
    return this.child.alive;
  }

  get pid(): number | undefined {
    return this.child.process.pid;
  }

  get output(): string {
    return tail(this.child.output);
  }

  /** The statistics, one row per frontend, backend and server. */
  async stats(): Promise<HaproxyStat[]> {
    const response = await fetch(`http://127.0.0.1:${this.statsPort}/stats;csv`, {
      signal: AbortSignal.timeout(3_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`haproxy stats answered ${response.status}`);
    const [header, ...rows] = text.trim().split('\n');
    const columns = header!.replace(/^# /, '').split(',');
    const at = (name: string) => columns.indexOf(name);
    return rows.map((row) => {
      const cells = row.split(',');
      const number = (name: string) => Number(cells[at(name)] || 0);
      return {
        proxy: cells[at('pxname')]!,
        server: cells[at('svname')]!,
        status: cells[at('status')]!,
        sessions: number('stot'),
        responses: ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other']
          .map(number)
          .reduce((sum, count) => sum + count, 0),
        responses5xx: number('hrsp_5xx'),
        retries: number('wretr'),
        redispatches: number('wredis'),
        connectionErrors: number('econ'),
        responseErrors: number('eresp'),
      };
    });
  }

  /** Waits until HAProxy sees these servers of a backend as up. */
  async waitUntilUp(backend: string, servers: readonly string[], boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    for (;;) {
      const rows = await this.stats().catch(() => []);
      const up = rows.filter(
        (row) => row.proxy === backend && servers.includes(row.server) && row.status === 'UP',
      );
      if (up.length === servers.length) return;
      if (Date.now() > deadline) {
        throw new Error(
          `haproxy did not see ${servers.join(', ')} of ${backend} up within ${boundMs} ms: ${JSON.stringify(rows)}`,
        );
      }
      await delay(100);
    }
  }

  async stop(): Promise<void> {
    await this.child.stop(5_000);
  }
}
