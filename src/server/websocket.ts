import type { WebSocket } from 'ws';
import * as z from 'zod';
import { limits } from '../../schema/limits.ts';
import { formatLogCursor, logCursorText, parseLogCursor } from '../cursors.ts';
import type { LogCursor } from '../cursors.ts';
import { HeadwayError, NotFoundError } from '../errors.ts';
import type { ErrorCode } from '../errors.ts';
import { toJson } from '../json.ts';
import type { Ledger, SubscribeOptions } from '../ledger.ts';
import type { SharedFollower } from '../live/shared-follower.ts';
import { toValidationIssues } from '../validation.ts';
import { toWire } from './event-stream.ts';

/** Most subscriptions one connection may hold. */
const maxSubscriptions = 100;
/** Above this many unsent bytes, a subscription waits before reading more of the log. */
const highWaterBytes = 1024 * 1024;

const subscribeMessage = z.strictObject({
  type: z.literal('subscribe'),
  /** The client's name for the subscription; every message about it carries it. */
  id: z.string().min(1).max(100),
  jobId: z.string().min(1).max(limits.idLength).optional(),
  project: z.string().min(1).max(limits.nameLength).optional(),
  /** Start after this cursor (default: now). */
  after: logCursorText.optional(),
});

/** How a session pings, and the server's cap on streams it must respect. */
export interface SessionSettings {
  heartbeatMs: number;
  /** True while the server holds its most event streams. */
  streamsFull: () => boolean;
  maxStreams: number;
}

const clientMessage = z.discriminatedUnion('type', [
  subscribeMessage,
  z.strictObject({ type: z.literal('unsubscribe'), id: z.string().min(1).max(100) }),
  z.strictObject({ type: z.literal('ping') }),
]);

/**
 * One WebSocket client: subscriptions by job or project, each a snapshot and then every
 * event with its cursor; `ping` answered with `pong`. Protocol pings every
 * `heartbeatMs`; a peer that has not answered the last one is cut off and its
 * subscriptions end.
 */
export class WebSocketSession {
  private readonly subscriptions = new Map<string, AbortController>();
  private alive = true;
  private closed = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly socket: WebSocket,
    private readonly ledger: Ledger,
    private readonly follower: SharedFollower,
    private readonly settings: SessionSettings,
    private readonly onClose: () => void,
  ) {
    socket.on('pong', () => (this.alive = true));
    socket.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(new Uint8Array(data));
      void this.receive(isBinary ? null : bytes.toString('utf8'));
    });
    socket.on('close', () => this.close());
    socket.on('error', () => this.close());
    this.heartbeat = setInterval(() => {
      if (!this.alive) {
        // A dead peer: no answer since the last ping.
        socket.terminate();
        this.close();
        return;
      }
      this.alive = false;
      socket.ping();
    }, settings.heartbeatMs);
  }

  /** Subscriptions open now. */
  get size(): number {
    return this.subscriptions.size;
  }

  private async receive(text: string | null): Promise<void> {
    let json: unknown;
    try {
      json = text === null ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = clientMessage.safeParse(json);
    if (!parsed.success) {
      const issues = json === undefined ? [] : toValidationIssues(parsed.error, '');
      const code: ErrorCode = 'invalid_input';
      return this.send({
        type: 'error',
        error: {
          code,
          message:
            json === undefined
              ? 'expected a JSON text message such as {"type":"subscribe","id":"1","jobId":"…"}'
              : issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; '),
          issues,
        },
      });
    }
    const message = parsed.data;
    if (message.type === 'ping') return this.send({ type: 'pong' });
    if (message.type === 'unsubscribe') {
      this.subscriptions.get(message.id)?.abort();
      this.subscriptions.delete(message.id);
      return this.send({ type: 'unsubscribed', id: message.id });
    }
    await this.subscribe(message);
  }

  private async subscribe(message: z.infer<typeof subscribeMessage>): Promise<void> {
    const { id } = message;
    const fail = (code: ErrorCode, text: string) =>
      this.send({ type: 'error', id, error: { code, message: text } });
    if (this.subscriptions.has(id))
      return fail('invalid_input', `id: '${id}' is subscribed already`);
    if (this.subscriptions.size >= maxSubscriptions) {
      return fail(
        'invalid_input',
        `expected at most ${maxSubscriptions} subscriptions per connection`,
      );
    }
    if (this.settings.streamsFull()) {
      return fail(
        'too_many_streams',
        `the server holds its most event streams (${this.settings.maxStreams}); retry later or on another server`,
      );
    }
    if ((message.jobId === undefined) === (message.project === undefined)) {
      return fail('invalid_input', 'expected either jobId or project, received both or neither');
    }
    const controller = new AbortController();
    this.subscriptions.set(id, controller);
    try {
      let snapshot: unknown;
      let filter: Omit<SubscribeOptions, 'after'>;
      if (message.jobId !== undefined) {
        snapshot = await this.ledger.status(message.jobId);
        if (snapshot === null) throw new NotFoundError(`Job '${message.jobId}'`);
        filter = { streamIds: [message.jobId] };
      } else {
        snapshot = { jobs: await this.ledger.jobs({ project: message.project!, active: true }) };
        filter = { projects: [message.project!] };
      }
      const after: LogCursor =
        message.after === undefined ? await this.follower.cursor() : parseLogCursor(message.after);
      this.send({ type: 'subscribed', id, cursor: formatLogCursor(after) });
      this.send({ type: 'snapshot', id, data: snapshot });
      for await (const page of this.follower.follow({ ...filter, after }, controller.signal)) {
        for (const event of page.events) {
          // Paced by the socket: a peer that does not read slows its own subscriptions.
          while (this.socket.bufferedAmount > highWaterBytes && !controller.signal.aborted) {
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          if (controller.signal.aborted) break;
          this.send({ type: 'event', id, cursor: formatLogCursor(event), event: toWire(event) });
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) {
        const known = error instanceof HeadwayError;
        fail(
          known ? error.code : 'internal',
          known ? error.message : 'the subscription failed; subscribe again',
        );
      }
    } finally {
      if (this.subscriptions.get(id) === controller) this.subscriptions.delete(id);
    }
  }

  private send(message: unknown): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(toJson(message));
  }

  /** Ends every subscription and the heartbeat; safe to call more than once. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const controller of this.subscriptions.values()) controller.abort();
    this.subscriptions.clear();
    this.onClose();
  }
}
