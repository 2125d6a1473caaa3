import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { haproxyConfig as frontendsConfig } from '../test/topology/haproxy.ts';

export { findHaproxy, freePorts } from '../test/topology/haproxy.ts';

// The processes of the topology benchmark: `headway serve` on ports of our choosing (with
// extra flags, which test/topology/processes.ts does not take, and without its vitest
// import), HAProxy in front (ports and configuration from test/topology/haproxy.ts), and
// what each of them costs in CPU, read from /proc.

const repository = fileURLToPath(new URL('..', import.meta.url));
const headwayCli = join(repository, 'src', 'cli', 'headway.ts');

/** A child whose output is kept (its end only) and whose exit is awaited. */
class Child {
  output = '';
  exited = false;
  readonly exit: Promise<void>;

  constructor(readonly process: ChildProcess) {
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (this.output.length > 100_000) this.output = this.output.slice(-50_000);
    };
    process.stdout?.on('data', collect);
    process.stderr?.on('data', collect);
    this.exit = new Promise((resolve) =>
      process.once('exit', () => {
        this.exited = true;
        resolve();
      }),
    );
  }

  get tail(): string {
    return this.output.slice(-3_000);
  }

  /** SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.exited) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exit;
    clearTimeout(timer);
  }
}

/** `headway serve` in a process of its own, from the sources (tsx). */
export class ServeProcess {
  private child: Child | null = null;

  constructor(
    readonly name: string,
    readonly port: number,
    private readonly globalArgs: readonly string[],
    private readonly serveArgs: readonly string[] = [],
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.process.pid;
  }

  /** Spawns it and waits until `/health` answers 200 (within `boundMs`). */
  async start(boundMs = 60_000): Promise<void> {
    const env = { ...process.env };
    for (const name of [
      'DATABASE_URL',
      'HEADWAY_DATABASE_URL',
      'HEADWAY_SCHEMA',
      'HEADWAY_DATABASE_POOLER',
      'HEADWAY_LISTEN_DATABASE_URL',
      'HEADWAY_URL',
      'HEADWAY_TOKEN',
      'HEADWAY_TOKENS',
      'PORT',
    ]) {
      delete env[name];
    }
    const child = new Child(
      spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          headwayCli,
          ...this.globalArgs,
          'serve',
          '--port',
          String(this.port),
          ...this.serveArgs,
        ],
        { cwd: repository, env, stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    this.child = child;
    const deadline = Date.now() + boundMs;
    for (;;) {
      if (child.exited) throw new Error(`${this.name} exited while starting:\n${child.tail}`);
      if (Date.now() > deadline) {
        await child.stop(1_000);
        throw new Error(`${this.name} was not healthy within ${boundMs} ms:\n${child.tail}`);
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

  /** SIGTERM (it drains and closes), SIGKILL after 15 s. */
  async stop(): Promise<void> {
    await this.child?.stop(15_000);
  }
}

/** One frontend, `headway`, round-robining over `servers` (the tests' configuration). */
export function haproxyConfig(
  port: number,
  servers: readonly ServeProcess[],
  statsPort: number,
): string {
  return frontendsConfig([{ name: 'headway', port, servers }], statsPort);
}

/** Requests each server of the backend answered, and 5xx answers, from HAProxy's statistics. */
export interface BackendShare {
  server: string;
  status: string;
  /** Answers of every class (health checks are not counted). */
  requests: number;
  responses5xx: number;
}

/** `haproxy -f <cfg> -db` in the foreground. */
export class HaproxyProcess {
  private constructor(
    private readonly child: Child,
    private readonly statsPort: number,
  ) {}

  get pid(): number | undefined {
    return this.child.process.pid;
  }

  static async start(
    binary: string,
    folder: string,
    config: string,
    statsPort: number,
  ): Promise<HaproxyProcess> {
    const file = join(folder, 'haproxy.cfg');
    await writeFile(file, config);
    execFileSync(binary, ['-c', '-f', file], { encoding: 'utf8', stdio: 'pipe' });
    const child = new Child(
      spawn(binary, ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    const haproxy = new HaproxyProcess(child, statsPort);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exited) throw new Error(`haproxy exited:\n${child.tail}`);
      if ((await haproxy.backend().catch(() => null)) !== null) return haproxy;
      if (Date.now() > deadline) {
        await child.stop(1_000);
        throw new Error(`haproxy did not answer within 15 s:\n${child.tail}`);
      }
      await delay(50);
    }
  }

  /** The servers of the backend as HAProxy sees them. */
  async backend(): Promise<BackendShare[]> {
    const response = await fetch(`http://127.0.0.1:${this.statsPort}/stats;csv`, {
      signal: AbortSignal.timeout(3_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`haproxy stats answered ${response.status}`);
    const [header, ...rows] = text.trim().split('\n');
    const columns = header!.replace(/^# /, '').split(',');
    const at = (name: string) => columns.indexOf(name);
    return rows
      .map((row) => row.split(','))
      .filter(
        (cells) =>
          cells[at('pxname')] === 'headway_servers' &&
          !['BACKEND', 'FRONTEND'].includes(cells[at('svname')]!),
      )
      .map((cells) => ({
        server: cells[at('svname')]!,
        status: cells[at('status')]!,
        requests: ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other']
          .map((name) => Number(cells[at(name)] || 0))
          .reduce((sum, count) => sum + count, 0),
        responses5xx: Number(cells[at('hrsp_5xx')] || 0),
      }));
  }

  /** Waits until every server of the backend is UP. */
  async waitUntilUp(count: number, boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    for (;;) {
      const rows = await this.backend().catch(() => []);
      if (rows.filter((row) => row.status === 'UP').length === count) return;
      if (Date.now() > deadline) {
        throw new Error(`haproxy did not see ${count} servers up: ${JSON.stringify(rows)}`);
      }
      await delay(100);
    }
  }

  async stop(): Promise<void> {
    await this.child.stop(5_000);
  }
}

/** Clock ticks a second of /proc's CPU times (USER_HZ: 100 on Linux). */
const ticksPerSecond = 100;

/** User plus system CPU time of a process so far, in ms; null when it is gone. */
export async function processCpuMs(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (text === null) return null;
  // Fields after the command name (which may hold spaces): state is field 3, utime 14.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

/** The process ids whose command name is `name` (e.g. every `postgres` process). */
export async function pidsNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) pids.push(Number(entry));
  }
  return pids;
}

/** CPU times of processes by pid, in ms. */
export async function cpuOf(pids: readonly number[]): Promise<Map<number, number>> {
  const times = new Map<number, number>();
  for (const pid of pids) {
    const ms = await processCpuMs(pid);
    if (ms !== null) times.set(pid, ms);
  }
  return times;
}

/** The machine's busy and total CPU time so far (all cores), in ms, from /proc/stat. */
export async function machineCpuMs(): Promise<{ busy: number; total: number } | null> {
  const text = await readFile('/proc/stat', 'utf8').catch(() => null);
  const line = text?.split('\n').find((row) => row.startsWith('cpu '));
  if (!line) return null;
  // user nice system idle iowait irq softirq steal (guest times are inside user).
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number) as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + steal;
  return {
    busy: (busy * 1000) / ticksPerSecond,
    total: ((busy + idle + iowait) * 1000) / ticksPerSecond,
  };
}

/** The 1-minute load average. */
export async function loadAverage(): Promise<number | null> {
  const text = await readFile('/proc/loadavg', 'utf8').catch(() => null);
  return text === null ? null : Number(text.split(' ')[0]);
}
