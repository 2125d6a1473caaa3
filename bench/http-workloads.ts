import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runBenchChild } from './child.ts';
import type { HttpClientsResult } from './http-clients.ts';
import type { HttpServerFigures } from './http-server.ts';
import { machineBusyShare, machineCpuTicks, startRoundTripProbe } from './round-trips.ts';

const clientsPath = fileURLToPath(new URL('./http-clients.ts', import.meta.url));
const serverPath = fileURLToPath(new URL('./http-server.ts', import.meta.url));

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
 * projection runner) in a process of its own (bench/http-server.ts), while `GET /v1/jobs/:id` of one of those jobs is
 * timed one request after another. Saturated (httpAppend, and httpStatus during
 * saturation): each client posts `batches` batches back to back. Steady (httpStatus at a
 * steady rate): each client posts one batch every `intervalMs` for `durationMs`, so 10
 * clients every 100 ms make 10,000 events/s. The clients run in a child process, as other
 * services would.
 */
export async function httpAppendAndStatus(
  databaseUrl: string,
  load: HttpLoad,
  signal: AbortSignal,
): Promise<HttpStatusFigures> {
  const server = spawn(process.execPath, ['--import', 'tsx', serverPath], {
    env: { ...process.env, BENCH_DATABASE_URL: databaseUrl },
    stdio: ['pipe', 'pipe', 'inherit'],
    signal,
  });
  server.on('error', () => undefined);
  const lines = createInterface({ input: server.stdout })[Symbol.asyncIterator]();
  const nextLine = async <T>(): Promise<T> => {
    const line = await lines.next();
    if (line.done) throw new Error(`bench/http-server.ts ended early (exit ${server.exitCode})`);
    return JSON.parse(line.value) as T;
  };
  try {
    const { url } = await nextLine<{ url: string }>();
    const env =
      load.kind === 'saturated'
        ? { BENCH_HTTP_BATCHES: String(load.batches) }
        : {
            BENCH_HTTP_INTERVAL_MS: String(load.intervalMs),
            BENCH_HTTP_DURATION_MS: String(load.durationMs),
          };
    const probe = await startRoundTripProbe(databaseUrl);
    try {
      const cpuBefore = machineCpuTicks();
      const result = await runBenchChild<HttpClientsResult>(clientsPath, {
        env: { BENCH_HTTP_URL: url, BENCH_HTTP_CLIENTS: String(load.clients), ...env },
        signal,
      });
      const machineBusy = machineBusyShare(cpuBefore, machineCpuTicks());
      server.stdin.end();
      const { loopDelayP99Ms } = await nextLine<HttpServerFigures>();
      const roundTrip = await probe.stop();
      return {
        ...result,
        serverLoopDelayP99Ms: loopDelayP99Ms,
        roundTripP50Ms: roundTrip.p50Ms,
        roundTripP99Ms: roundTrip.p99Ms,
        machineBusy,
      };
    } finally {
      await probe.stop();
    }
  } finally {
    server.stdin.end();
    if (server.exitCode === null && server.signalCode === null) await once(server, 'exit');
  }
}
