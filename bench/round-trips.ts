import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { percentileFigures } from './stats.ts';
import type { PercentileFigures } from './stats.ts';

const probeUrl = new URL('./round-trip-probe.ts', import.meta.url);

/** A running probe of the database's round trip (bench/round-trip-probe.ts). */
export interface RoundTripProbe {
  /** Stops the probe: the p50 and p99 of its `select 1` round trips. Safe to call again. */
  stop(): Promise<PercentileFigures & { samples: number }>;
}

/** Starts timing `select 1` on a connection of its own, in a worker thread of this process. */
export async function startRoundTripProbe(databaseUrl: string): Promise<RoundTripProbe> {
  // A worker does not inherit this process's `--import tsx`: it registers tsx, then loads the probe.
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const bootstrap = `import(${tsx}).then((tsx) => { tsx.register(); return import(${JSON.stringify(probeUrl.href)}); });`;
  const worker = new Worker(bootstrap, { eval: true, workerData: { url: databaseUrl } });
  await once(worker, 'message');
  let stopped: ReturnType<RoundTripProbe['stop']> | undefined;
  const stop = async () => {
    worker.postMessage('stop');
    try {
      const [{ latencies }] = (await once(worker, 'message')) as [{ latencies: number[] }];
      return { ...percentileFigures(latencies), samples: latencies.length };
    } finally {
      await worker.terminate();
    }
  };
  return { stop: () => (stopped ??= stop()) };
}

/** CPU time of the whole machine so far, from /proc/stat; null where there is none. */
export function machineCpuTicks(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    // cpu  user nice system idle iowait irq softirq steal …, in clock ticks.
    const ticks = line.split(/\s+/).slice(1, 9).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
      ticks;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return null;
  }
}

/** The share of all cores busy between two `machineCpuTicks`, 0 to 1; null where unknown. */
export function machineBusyShare(
  before: ReturnType<typeof machineCpuTicks>,
  after: ReturnType<typeof machineCpuTicks>,
): number | null {
  if (!before || !after || after.total === before.total) return null;
  return (after.busy - before.busy) / (after.total - before.total);
}
