import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** Starts a server on a free loopback port and returns its base URL. */
export async function listenOnLoopback(server: FastifyInstance): Promise<string> {
  await server.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
}
