import { once } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RecordedEvent } from '../../schema/recorded-event.ts';
import { formatLogCursor, parseLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import { InvalidInputError } from '../errors.ts';
import { toJson } from '../json.ts';
import type { Ledger, SubscribeOptions } from '../ledger.ts';
import type { SharedFollower } from '../live/shared-follower.ts';
import { expectedIssue } from '../validation.ts';

/** A comment line this often keeps proxies from closing an idle stream. */
const heartbeatMs = 15_000;

/** What one event stream sends: its filter, where it starts, and its first message. */
interface StreamOptions {
  filter: Omit<SubscribeOptions, 'after'>;
  /** A cursor to start after; `Last-Event-ID` wins; the live cursor when neither is given. */
  after?: string | undefined;
  snapshot?: () => Promise<unknown>;
}

/** The open event streams of a server, so that closing it can end them. */
export class EventStreams {
  private readonly open = new Set<AbortController>();

  /** Streams read the log through the server's one shared follower. */
  constructor(private readonly follower: SharedFollower) {}

  /** How many streams are open now. */
  get size(): number {
    return this.open.size;
  }

  /**
   * Answers with Server-Sent Events: first `snapshot` (when given), then every event the
   * filter lets through as `event: event` with its cursor as the id, until the client
   * leaves or the server closes. A client that reconnects with `Last-Event-ID` (or asks
   * with `after`) gets exactly the events after that cursor. Reading is paced by the
   * socket: a slow client slows its own reads and is never buffered for.
   */
  async serve(
    request: FastifyRequest,
    reply: FastifyReply,
    ledger: Ledger,
    options: StreamOptions,
  ): Promise<void> {
    // Registered before the first await, so a client that leaves or a server that closes
    // during setup still ends this stream.
    const controller = new AbortController();
    this.open.add(controller);
    request.raw.socket.once('close', () => controller.abort());
    try {
      await this.stream(request, reply, ledger, options, controller);
    } finally {
      this.open.delete(controller);
    }
  }

  private async stream(
    request: FastifyRequest,
    reply: FastifyReply,
    ledger: Ledger,
    options: StreamOptions,
    controller: AbortController,
  ): Promise<void> {
    const lastEventId = request.headers['last-event-id'];
    const resumeFrom = typeof lastEventId === 'string' ? lastEventId : options.after;
    let after: LogCursor;
    try {
      after = resumeFrom === undefined ? await this.follower.cursor() : parseLogCursor(resumeFrom);
    } catch {
      throw new InvalidInputError([
        expectedIssue(
          typeof lastEventId === 'string' ? 'Last-Event-ID' : 'after',
          'a cursor such as 812:40 (an event id of this stream)',
          resumeFrom,
        ),
      ]);
    }
    // Before any byte is sent, so a bad filter still gets a JSON 400.
    await ledger.readAll({ ...options.filter, after, limit: 1 });
    const snapshot = options.snapshot ? await options.snapshot() : undefined;
    if (controller.signal.aborted) return;

    reply.hijack();
    const socket = reply.raw;
    socket.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const heartbeat = setInterval(() => socket.write(': ping\n\n'), heartbeatMs);
    const write = async (text: string) => {
      if (!socket.write(text)) {
        await once(socket, 'drain', { signal: controller.signal });
      }
    };
    try {
      // Tells EventSource clients how long to wait before reconnecting.
      await write('retry: 1000\n\n');
      // The snapshot carries the starting cursor as its id, so a client that reconnects
      // before any event still resumes exactly where it began.
      if (snapshot !== undefined) await write(frame('snapshot', snapshot, formatLogCursor(after)));
      for await (const page of this.follower.follow(
        { ...options.filter, after },
        controller.signal,
      )) {
        let text = '';
        for (const event of page.events)
          text += frame('event', toWire(event), formatLogCursor(event));
        if (text) await write(text);
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        // Headers are gone; the client sees the stream end and reconnects with its last id.
        request.log.error({ err: error }, 'event stream failed');
      }
    } finally {
      clearInterval(heartbeat);
      socket.end();
    }
  }

  /** Ends every open stream; their clients may reconnect elsewhere with their last id. */
  closeAll(): void {
    for (const controller of this.open) controller.abort();
  }
}

/** One SSE message; data is JSON on one line. */
function frame(event: string, data: unknown, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${toJson(data)}\n\n`;
}

/** A recorded event as the API sends it: with its cursor, positions as strings. */
export function toWire(event: RecordedEvent) {
  return { ...event, cursor: formatLogCursor(event) };
}
