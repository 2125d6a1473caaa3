import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Ledger } from '../src/ledger.ts';
import { createServer } from '../src/server/server.ts';
import { runBenchChild } from './child.ts';
import type { HttpClientsResult } from './http-clients.ts';

const clientsPath = fileURLToPath(new URL('./http-clients.ts', import.meta.url));

/**
 * httpAppend: `clients` concurrent clients, each posting `batches` batches of 100 events of
 * its own job to `POST /v1/jobs/:id/events` over keep-alive HTTP on loopback, against a
 * server (with its projection runner) in this process. httpStatus: `GET /v1/jobs/:id` of
 * one of those jobs, one request after another, while the appends run. The clients run in
 * a child process, as other services would.
 */
export async function httpAppendAndStatus(
  ledger: Ledger,
  options: { clients: number; batches: number; signal: AbortSignal },
): Promise<HttpClientsResult> {
  const server = await createServer({ ledger });
  const runners = ledger.runProjections();
  try {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    return await runBenchChild<HttpClientsResult>(clientsPath, {
      env: {
        BENCH_HTTP_URL: url,
        BENCH_HTTP_CLIENTS: String(options.clients),
        BENCH_HTTP_BATCHES: String(options.batches),
      },
      signal: options.signal,
    });
  } finally {
    await server.close();
    await runners.stop();
  }
}
