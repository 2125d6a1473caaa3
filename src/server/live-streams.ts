import type { WebSocket } from 'ws';
import type { Ledger } from '../ledger.ts';
import { SharedFollower } from '../live/shared-follower.ts';
import { EventStreams } from './event-stream.ts';
import { WebSocketSession } from './websocket.ts';

/**
 * A server's event streams, SSE and WebSocket alike: one reader of the log for all of them
 * (docs/architecture.md, "Effects"), and the count that the cap on streams holds to.
 */
export class LiveStreams {
  readonly follower: SharedFollower;
  /** The open SSE streams. */
  readonly sse: EventStreams;
  private readonly sessions = new Set<WebSocketSession>();

  constructor(
    private readonly ledger: Ledger,
    /** Most event streams (SSE streams and WebSocket subscriptions) at once. */
    readonly max: number,
  ) {
    this.follower = new SharedFollower(ledger);
    this.sse = new EventStreams(this.follower);
  }

  /** Event streams open now: SSE streams and WebSocket subscriptions. */
  get open(): number {
    let open = this.sse.size;
    for (const session of this.sessions) open += session.size;
    return open;
  }

  /** True while the server holds its most event streams. */
  get full(): boolean {
    return this.open >= this.max;
  }

  /** Serves one WebSocket client until it leaves. */
  openSession(socket: WebSocket, heartbeatMs: number): void {
    const session = new WebSocketSession(
      socket,
      this.ledger,
      this.follower,
      { heartbeatMs, streamsFull: () => this.full, maxStreams: this.max },
      () => this.sessions.delete(session),
    );
    this.sessions.add(session);
  }

  /** Ends the SSE streams and the shared reader, so that `close()` need not wait for clients. */
  close(): void {
    this.sse.closeAll();
    this.follower.close();
  }
}
