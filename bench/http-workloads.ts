import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { runBenchChild } from './child.ts';
import type { HttpClientsResult } from './http-clients.ts';
import { machineBusyShare, machineCpuTicks, startRoundTripProbe } from './round-trips.ts';

const clientsPath = fileURLToPath(new URL('./http-clients.ts', import.meta.url));

/** What the clients measured, with what bounds it on the server's side. */
export interface HttpStatusFigures extends HttpClientsResult {
  /** The server's event-loop delay over the run, p99: waits behind other work in the server. */
  serverLoopDelayP99Ms: number;
  /** `select 1` from a thread of its own meanwhile: the database's round trip on this machine. */
  roundTripP50Ms: number;
  roundTripP99Ms: number;
  /** The share of all the machine's cores busy meanwhile (0 to 1); null where unknown. */
  machineBusy: number | null;
}

/** How the clients post: flat out, or each one batch per interval for a while. */
export type HttpLoad =
  | { kind: 'saturated'; clients: number; batches: number }
  | { kind: 'steady'; clients: number; intervalMs: number; durationMs: number };

/**
 * `clients` clients, each posting batches of 100 events of its own job to
 * `POST /v1/jobs/:id/events` over keep-alive HTTP on loopback, against a server (with its
 * projection runner) in this process, while `GET /v1/jobs/:id` of one of those jobs is
 * timed one request after another. Saturated (httpAppend, and httpStatus during
 * saturation): each client posts `batches` batches back to back. Steady (httpStatus at a
 * steady rate): each client posts one batch every `intervalMs` for `durationMs`, so 10
 * clients every 100 ms make 10,000 events/s. The clients run in a child process, as other
 * services would.
 */
export async function httpAppendAndStatus(
  ledger: Ledger,
  databaseUrl: string,
  load: HttpLoad,
  signal: AbortSignal,
): Promise<HttpStatusFigures> {
  // What earlier workloads left unfolded (the saturated run's backlog, for the steady one)
  // is folded before the clock starts, so the runner follows only this run's appends.
  await ledger.catchUpProjections();
  const server = await createServer({ ledger });
  const runners = ledger.runProjections();
  // Status waits behind whatever holds the server's event loop: reported beside its p99.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  try {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    const env =
      load.kind === 'saturated'
        ? { BENCH_HTTP_BATCHES: String(load.batches) }
        : {
            BENCH_HTTP_INTERVAL_MS: String(load.intervalMs),
            BENCH_HTTP_DURATION_MS: String(load.durationMs),
          };
    loopDelay.enable();
    // The first status request starts the timed window: the clients' set-up is left out.
    let timed = false;
    server.server.on('request', (request: { method?: string }) => {
      if (timed || request.method !== 'GET') return;
      timed = true;
      loopDelay.reset();
    });
    const probe = await startRoundTripProbe(databaseUrl);
    try {
      const cpuBefore = machineCpuTicks();
      const result = await runBenchChild<HttpClientsResult>(clientsPath, {
        env: { BENCH_HTTP_URL: url, BENCH_HTTP_CLIENTS: String(load.clients), ...env },
        signal,
      });
      const machineBusy = machineBusyShare(cpuBefore, machineCpuTicks());
      loopDelay.disable();
      const roundTrip = await probe.stop();
      return {
        ...result,
        serverLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        roundTripP50Ms: roundTrip.p50Ms,
        roundTripP99Ms: roundTrip.p99Ms,
        machineBusy,
      };
    } finally {
      await probe.stop();
    }
  } finally {
    await server.close();
    await runners.stop();
  }
}
