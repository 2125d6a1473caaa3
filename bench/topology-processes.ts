import { readdir, readFile } from 'node:fs/promises';
import { haproxyConfig as frontendsConfig } from '../test/topology/haproxy.ts';
import type { Haproxy, HeadwayServer } from '../test/topology/processes.ts';

export { findHaproxy, freePorts } from '../test/topology/haproxy.ts';

// What the topology benchmark adds to the topology tests' processes
// (test/topology/processes.ts): HAProxy's share of requests per server, and what each
// process costs in CPU, read from /proc.

/** One frontend, `headway`, round-robining over `servers` (the tests' configuration). */
export function haproxyConfig(
  port: number,
  servers: readonly HeadwayServer[],
  statsPort: number,
): string {
  return frontendsConfig([{ name: 'headway', port, servers }], statsPort);
}

/** The backend of that frontend, as HAProxy's statistics name it. */
export const backendName = 'headway_servers';

/** Requests each server of the backend answered, and 5xx answers, from HAProxy's statistics. */
export interface BackendShare {
  server: string;
  status: string;
  /** Answers of every class (health checks are not counted). */
  requests: number;
  responses5xx: number;
}

/** The servers of the benchmark's backend as HAProxy sees them. */
export async function backendShares(haproxy: Haproxy): Promise<BackendShare[]> {
  return (await haproxy.stats())
    .filter((row) => row.proxy === backendName && !['BACKEND', 'FRONTEND'].includes(row.server))
    .map((row) => ({
      server: row.server,
      status: row.status,
      requests: row.responses,
      responses5xx: row.responses5xx,
    }));
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
