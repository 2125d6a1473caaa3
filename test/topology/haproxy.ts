import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

// Ports and HAProxy for the topology tests and the topology benchmark alike: no vitest here,
// so a benchmark process can load it.

/** A free TCP port on loopback: bound to port 0, read, released. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port was bound');
  return address.port;
}

/** Distinct free ports (a port handed out twice in a row would break the topology). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count && attempt < count * 20; attempt++) {
    ports.add(await freePort());
  }
  if (ports.size < count) throw new Error(`found only ${ports.size} of ${count} free ports`);
  return [...ports];
}

/**
 * The HAProxy binary, or null when it is not installed: on the PATH, else where Debian's
 * package puts it (/usr/sbin, often missing from a non-root user's PATH).
 */
export function findHaproxy(): string | null {
  try {
    const found = execFileSync('sh', ['-c', 'command -v haproxy'], { encoding: 'utf8' }).trim();
    if (found) return found;
  } catch {
    // Not on the PATH.
  }
  for (const candidate of ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy']) {
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** A frontend of the balancer: where it listens and the servers behind it. */
export interface Frontend {
  name: string;
  port: number;
  servers: readonly { name: string; port: number }[];
}

/**
 * An HAProxy configuration: each frontend round-robins over its servers, health-checked on
 * `GET /health` every 500 ms (down after 2 failures, up after 2 passes); a connection
 * that fails is tried again (`retries`) on another server (`redispatch`). A request sent
 * to a server that dies is not retried by HAProxy (the default `retry-on conn-failure`):
 * the client gets a 502 and sends the batch again with the same ids. `statsPort` serves
 * the statistics as CSV at `/stats;csv`.
 */
export function haproxyConfig(frontends: readonly Frontend[], statsPort: number): string {
  const lines = [
    'global',
    '  maxconn 1000',
    '  nbthread 1',
    '  hard-stop-after 5s',
    '',
    'defaults',
    '  mode http',
    '  retries 3',
    '  option redispatch 1',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-request 10s',
    '  timeout queue 5s',
    '  timeout check 2s',
    // Server-Sent Events through the balancer would be tunnels.
    '  timeout tunnel 1h',
    '  default-server inter 500ms fastinter 250ms downinter 500ms rise 2 fall 2',
    '',
    'listen stats',
    `  bind 127.0.0.1:${statsPort}`,
    '  stats enable',
    '  stats uri /stats',
    '  stats refresh 0',
  ];
  for (const frontend of frontends) {
    lines.push(
      '',
      `frontend ${frontend.name}`,
      `  bind 127.0.0.1:${frontend.port}`,
      `  default_backend ${frontend.name}_servers`,
      '',
      `backend ${frontend.name}_servers`,
      '  balance roundrobin',
      '  option httpchk GET /health',
      '  http-check expect status 200',
      ...frontend.servers.map((server) => `  server ${server.name} 127.0.0.1:${server.port} check`),
    );
  }
  return `${lines.join('\n')}\n`;
}
