import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/** What the proxy does with traffic now. */
export type ProxyMode =
  /** Forwards both ways. */
  | 'pass'
  /** Resets every open connection and refuses new ones, as a cut cable or a firewall RST. */
  | 'reset'
  /**
   * Forwards nothing and says nothing, as a network that silently drops packets: open
   * connections hang, new ones are accepted but never reach the server. Traffic held back
   * flows again once the mode changes, as TCP's retransmissions would deliver it.
   */
  | 'blackhole';

interface Pair {
  client: Socket;
  server: Socket;
}

/**
 * A loopback TCP proxy in front of PostgreSQL that a test can reset, black-hole and
 * delay, so database faults are real network faults and not mocks.
 *
 * @example
 * const proxy = await TcpProxy.start(5432);
 * proxy.setMode('blackhole');
 */
export class TcpProxy {
  private mode: ProxyMode = 'pass';
  private delayMs = 0;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    private readonly targetPort: number,
    private readonly targetHost: string,
  ) {}

  /** Starts a proxy on a free loopback port in front of `targetHost:targetPort`. */
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort, targetHost);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The port clients connect to. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Connections open through the proxy now. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Switches what the proxy does, for open and new connections alike. */
  setMode(mode: ProxyMode): void {
    this.mode = mode;
    for (const pair of this.pairs) {
      if (mode === 'reset') this.reset(pair);
      else if (mode === 'blackhole') this.hold(pair);
      else this.release(pair);
    }
  }

  /** Delays every chunk forwarded from now on by `ms` (0: none). */
  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  /** Resets every connection and stops listening. */
  async close(): Promise<void> {
    for (const pair of this.pairs) this.reset(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const server = connect(this.targetPort, this.targetHost);
    const pair = { client, server };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (this.delayMs === 0) {
          if (!to.write(chunk)) from.pause();
          return;
        }
        setTimeout(() => to.destroyed || to.write(chunk), this.delayMs);
      });
      to.on('drain', () => {
        if (this.mode === 'pass') from.resume();
      });
    };
    forward(client, server);
    forward(server, client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('error', end);
    server.on('error', end);
    client.on('close', end);
    server.on('close', end);
    if (this.mode === 'blackhole') this.hold(pair);
  }

  private hold(pair: Pair): void {
    pair.client.pause();
    pair.server.pause();
  }

  private release(pair: Pair): void {
    pair.client.resume();
    pair.server.resume();
  }

  private reset(pair: Pair): void {
    this.pairs.delete(pair);
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.server.destroyed) pair.server.resetAndDestroy();
  }
}
