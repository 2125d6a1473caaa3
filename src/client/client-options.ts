import type { ClientErrorListener } from './batch-sender.ts';

/** How a client talks to a Headway server and how it buffers. */
export interface ClientOptions {
  /** The server, e.g. `http://127.0.0.1:4680`. */
  url: string;
  /** A bearer token from the server's `HEADWAY_TOKENS`. */
  token?: string;
  /** Send a job's buffered events once this many are waiting (default 500). */
  flushEvents?: number;
  /** …or once the oldest has waited this long (default 200 ms). */
  flushIntervalMs?: number;
  /** Most events in one request (default 1,000, at most 10,000). */
  batchEvents?: number;
  /** Most events buffered across jobs; recording awaits while it is full (default 20,000). */
  maxBufferedEvents?: number;
  /**
   * How long a batch is retried, from its first attempt, before it is given up and its
   * events reported by `flush()` / `close()` (default 300,000: five minutes). The last
   * attempt may start at this bound and take up to `requestTimeoutMs` more.
   */
  giveUpAfterMs?: number;
  /** How long one request may take, answer included, before it counts as failed and is
   * retried (default 30,000 ms). */
  requestTimeoutMs?: number;
  /**
   * Read your own writes (default true): each read carries the log cursor of this client's
   * latest append (`Headway-Read-After`), so a server that reads from a replica answers it
   * only once the replica has replayed that append, or from the primary.
   */
  readYourWrites?: boolean;
  /**
   * Each failed attempt (`retrying: true`, it is sent again) and each batch given up
   * (`retrying: false`; `flush()` and `close()` then reject with `EventsNotStoredError`).
   */
  onError?: ClientErrorListener;
}

/** What a buffered recording call resolves to: the event is queued, not yet stored. */
export interface Queued {
  jobId: string;
  /** Events of the call, now in the buffer. */
  events: number;
}

/** The same answer as `Queued`, or the stored result when the call had to wait for one. */
export type ClientAppendResult = Queued & { version?: number };
