import { faultSoak, idleStreams } from './fault-workloads.ts';
import type { IdleStreamsResult, SoakResult } from './fault-workloads.ts';
import type { ScratchDatabase } from './scratch-database.ts';

/** What `npm run bench -- --faults` measures. */
export interface FaultBenchResult {
  date: string;
  soak: SoakResult;
  idleStreams: IdleStreamsResult;
}

/** The idle-streams figure first (on a quiet server), then the soak. */
export async function runFaultWorkloads(
  database: ScratchDatabase,
  log: (line: string) => void,
): Promise<FaultBenchResult> {
  log('idleStreams: 1,000 idle SSE streams against /health and appends');
  const streams = await idleStreams(database.url, { streams: 1_000, samples: 300 });
  log(
    `idleStreams: health p50 ${streams.without.health.p50Ms.toFixed(2)} -> ${streams.with.health.p50Ms.toFixed(2)} ms, append p50 ${streams.without.append.p50Ms.toFixed(2)} -> ${streams.with.append.p50Ms.toFixed(2)} ms`,
  );
  log('faultSoak: 3 rounds of 5 terminations, a 10 s cut and a 10 s black hole, under load');
  const soak = await faultSoak(database, (line) => log(`faultSoak: ${line}`));
  return { date: new Date().toISOString(), soak, idleStreams: streams };
}
