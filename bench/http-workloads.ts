import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { runBenchChild } from './child.ts';
import type { HttpClientsResult } from './http-clients.ts';

const clientsPath = fileURLToPath(new URL('./http-clients.ts', import.meta.url));

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
  load: HttpLoad,
  signal: AbortSignal,
): Promise<HttpClientsResult> {
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
    const result = await runBenchChild<HttpClientsResult>(clientsPath, {
      env: { BENCH_HTTP_URL: url, BENCH_HTTP_CLIENTS: String(load.clients), ...env },
      signal,
    });
    loopDelay.disable();
    return { ...result, serverLoopDelayP99Ms: loopDelay.percentile(99) / 1e6 };
  } finally {
    await server.close();
    await runners.stop();
  }
}
