import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** How many ports after the one asked for `--next-free-port` tries. */
export const nextFreePortTries = 20;

/** Where `headway serve` listens, and whether it may move on when the port is taken. */
export interface ListenSettings {
  host: string;
  /** 0 takes any free port. */
  port: number;
  /** When the port is taken, take the first free one of the next `nextFreePortTries`. */
  nextFreePort: boolean;
}

/**
 * Listens on the port asked for, or with `nextFreePort` on the first free one after it,
 * and returns the server's URL and the port it got. A taken port (or one this process may
 * not bind) fails with one line that says how to choose another, not a stack trace.
 */
export async function listenOnPort(
  server: FastifyInstance,
  { host, port, nextFreePort }: ListenSettings,
): Promise<{ address: string; port: number }> {
  const last = nextFreePort && port !== 0 ? Math.min(65_535, port + nextFreePortTries) : port;
  for (let candidate = port; ; candidate += 1) {
    try {
      const address = await server.listen({ host, port: candidate });
      return { address, port: (server.server.address() as AddressInfo).port };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES') throw portRefused(host, candidate, error);
      if (code !== 'EADDRINUSE') throw error;
      if (candidate >= last) throw portsInUse(host, port, last, nextFreePort, error);
    }
  }
}

const howToChoose = 'choose another with --port <n> or PORT=<n> (--port 0 takes any free one)';

/** The error of a port (or a range of ports) taken by other processes. */
function portsInUse(
  host: string,
  first: number,
  last: number,
  nextFreePort: boolean,
  cause: unknown,
): Error {
  if (first === last) {
    const moveOn = nextFreePort ? '' : ', or add --next-free-port to take the next free one';
    return new Error(
      `Port ${first} on ${host} is in use by another process: expected a free port; ${howToChoose}${moveOn}`,
      { cause },
    );
  }
  return new Error(
    `Ports ${first} to ${last} on ${host} are all in use by other processes: expected a free one among them; ${howToChoose}`,
    { cause },
  );
}

/** The error of a port this process may not bind (below 1024 without privileges). */
function portRefused(host: string, port: number, cause: unknown): Error {
  return new Error(
    `Port ${port} on ${host} needs privileges this process lacks (EACCES): expected a port it may bind, such as one from 1024 up; ${howToChoose}`,
    { cause },
  );
}
