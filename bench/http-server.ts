/**
 * The server of httpAppend and httpStatus, in a process of its own as it is deployed: the
 * benchmark's own process holds the seeded logs and earlier workloads' garbage, whose
 * collection would stall a server sharing its heap. BENCH_DATABASE_URL says where. It folds
 * what earlier workloads left unfolded, starts the server and its projection runner, and
 * prints one JSON line with its URL; when its standard input closes it stops and prints one
 * JSON line of `HttpServerFigures`.
 */
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { openLedger } from '../src/open-ledger.ts';
import { createServer } from '../src/server/server.ts';

/** What the server's process measured, from the first status request on. */
export interface HttpServerFigures {
  /** The event-loop delay p99: the part of a wait spent behind other work in the server. */
  loopDelayP99Ms: number;
}

const databaseUrl = process.env.BENCH_DATABASE_URL;
if (!databaseUrl) throw new Error('BENCH_DATABASE_URL is not set');

const ledger = await openLedger({ databaseUrl, migrate: false });
// The previous run's backlog is folded before the clock starts, so the runner follows only
// this run's appends.
await ledger.catchUpProjections();
const server = await createServer({ ledger });
const runners = ledger.runProjections();
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
let timed = false;
server.server.on('request', (request: { method?: string }) => {
  // The first status request starts the timed window: the clients' set-up is left out.
  if (timed || request.method !== 'GET') return;
  timed = true;
  loopDelay.reset();
});
await server.listen({ host: '127.0.0.1', port: 0 });
loopDelay.enable();
const { port } = server.server.address() as AddressInfo;
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);

process.stdin.resume();
process.stdin.once('end', () => {
  loopDelay.disable();
  const figures: HttpServerFigures = { loopDelayP99Ms: loopDelay.percentile(99) / 1e6 };
  void (async () => {
    await server.close();
    await runners.stop();
    await ledger.close();
    process.stdout.write(`${JSON.stringify(figures)}\n`);
  })();
});
