import { randomUUID } from 'node:crypto';
import { runDrill, ServeProcess } from '../test/faults/drill.ts';
import type { DrillPlan, DrillReport } from '../test/faults/drill.ts';
import type { ScratchDatabase } from './scratch-database.ts';
import { sequentialLatency } from './stats.ts';
import type { LatencyFigures } from './stats.ts';

/** The soak: the fault suite's sequence, repeated, with a longer load. */
export const soakPlan: DrillPlan = {
  terminations: 5,
  cutMs: 10_000,
  blackholeMs: 10_000,
  rounds: 3,
  recoveryBoundMs: 60_000,
  producers: 8,
  batchEvents: 50,
  pauseMs: 20,
};

/** Figures of `faultSoak`. */
export type SoakResult = Omit<DrillReport, 'recoveryMs'> & {
  recoveryMs: { max: number; median: number; byFault: Record<string, number> };
  elapsedS: number;
};

/**
 * faultSoak: `headway serve` on PostgreSQL through a proxy, under a steady HTTP append
 * load, with rounds of backend terminations, network cuts and black holes; what clients
 * were told against what was stored, and how soon appends came back after each fault.
 */
export async function faultSoak(
  database: ScratchDatabase,
  log: (line: string) => void,
): Promise<SoakResult> {
  const started = Date.now();
  const report = await runDrill(database, soakPlan, log);
  const { server, proxy, jobIds: _jobIds, recoveryMs, ...figures } = report;
  await server.stop();
  await proxy.close();
  const times = Object.values(recoveryMs).sort((a, b) => a - b);
  return {
    ...figures,
    recoveryMs: {
      max: times.at(-1) ?? 0,
      median: times[Math.floor(times.length / 2)] ?? 0,
      byFault: recoveryMs,
    },
    elapsedS: Math.round((Date.now() - started) / 1000),
  };
}

/** Figures of `idleStreams`. */
export interface IdleStreamsResult {
  streams: number;
  without: { health: LatencyFigures; append: LatencyFigures };
  with: { health: LatencyFigures; append: LatencyFigures };
  /** Medians with the streams open over medians without: the target is below 2. */
  healthRatio: number;
  appendRatio: number;
}

/**
 * idleStreams: `/health` and one-event appends, one after another, against `headway serve`
 * on PostgreSQL, first with no event streams, then with `streams` idle SSE streams open
 * (each on a job nobody appends to), in the same run.
 */
export async function idleStreams(
  databaseUrl: string,
  options: { streams: number; samples: number },
): Promise<IdleStreamsResult> {
  const server = await ServeProcess.start(databaseUrl);
  const controller = new AbortController();
  try {
    const post = (path: string, body: unknown) =>
      fetch(`${server.address}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (response) => {
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`${path} answered ${response.status}`);
      });
    const busy = `busy-${randomUUID()}`;
    const idle = `idle-${randomUUID()}`;
    for (const jobId of [busy, idle]) {
      await post('/v1/jobs', { jobId, name: jobId, kind: 'bench', project: 'bench' });
    }
    let item = 0;
    const measure = async () => ({
      health: await sequentialLatency(options.samples, async () => {
        const response = await fetch(`${server.address}/health`);
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`/health answered ${response.status}`);
      }),
      append: await sequentialLatency(options.samples, () =>
        post(`/v1/jobs/${busy}/events`, {
          events: [{ type: 'item.completed', data: { itemId: `i-${item++}` } }],
        }),
      ),
    });
    // A first round warms the server up (JIT, pool, caches) and is not counted.
    await measure();
    const without = await measure();
    // Open every stream and wait for its first bytes, so all are live before measuring.
    const opened = Array.from({ length: options.streams }, async () => {
      const response = await fetch(`${server.address}/v1/jobs/${idle}/stream`, {
        signal: controller.signal,
      });
      if (response.status !== 200) throw new Error(`stream answered ${response.status}`);
      const reader = response.body!.getReader();
      await reader.read();
      // Kept open and drained, as an idle dashboard would.
      void (async () => {
        for (;;) if ((await reader.read()).done) return;
      })().catch(() => undefined);
    });
    await Promise.all(opened);
    const withStreams = await measure();
    return {
      streams: options.streams,
      without,
      with: withStreams,
      healthRatio: withStreams.health.p50Ms / without.health.p50Ms,
      appendRatio: withStreams.append.p50Ms / without.append.p50Ms,
    };
  } finally {
    controller.abort();
    await server.stop();
  }
}
