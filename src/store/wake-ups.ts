import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { Observable, interval, map, share } from 'rxjs';
import { reconnectDelayMs } from '../backoff.ts';

/**
 * Hints that new events may have been committed. Live readers poll the log when one
 * arrives; a lost or late hint only delays them until their next timed poll.
 */
export type WakeUps = Observable<void>;

/** The channel the `events_notify` trigger of migration 0003 notifies. */
export const eventsChannel = 'headway_events';

/** How often the LISTEN connection proves it is alive, so a silent one is replaced. */
const listenCheckMs = 10_000;

/**
 * Wake-ups from PostgreSQL over one dedicated LISTEN connection, opened for the first
 * subscriber and closed after the last. A dropped connection reconnects with backoff and
 * wakes everyone once it is back, since notifications sent meanwhile are lost. A
 * connection that stops answering its periodic check counts as dropped.
 */
export function postgresWakeUps(config: () => pg.ClientConfig): WakeUps {
  return new Observable<void>((subscriber) => {
    let client: pg.Client | null = null;
    let stopped = false;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;
    let check: NodeJS.Timeout | undefined;

    const reconnect = () => {
      if (stopped || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void connect();
      }, reconnectDelayMs(attempt++));
    };

    const connect = async () => {
      const next = new pg.Client(config());
      let lost = false;
      const onLost = () => {
        if (lost) return;
        lost = true;
        if (client === next) {
          client = null;
          clearInterval(check);
        }
        void next.end().catch(() => undefined);
        reconnect();
      };
      next.on('error', onLost);
      next.on('end', onLost);
      next.on('notification', () => subscriber.next());
      try {
        await next.connect();
        await next.query(`LISTEN ${eventsChannel}`);
      } catch {
        onLost();
        return;
      }
      if (stopped) {
        await next.end().catch(() => undefined);
        return;
      }
      if (lost) return;
      client = next;
      // The query has its bound (query_timeout); a black-holed connection fails it.
      check = setInterval(() => void next.query('select 1').catch(onLost), listenCheckMs);
      check.unref();
      // Notifications sent while no connection listened are lost: wake everyone once.
      if (attempt > 0) subscriber.next();
      attempt = 0;
    };

    void connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(check);
      void client?.end().catch(() => undefined);
    };
  }).pipe(share());
}

/** How often `pollingWakeUps` wakes live readers (they read the log each time). */
export const pollingWakeUpMs = 250;

/**
 * Wake-ups on a timer, for PostgreSQL reached only through a transaction pooler, where
 * LISTEN cannot work: the pooler gives each transaction whichever server connection is free,
 * so a LISTEN would be registered on a connection other clients use and its notifications
 * would reach nobody (or the wrong client). Live readers then read the log every
 * `intervalMs`; nothing is lost either way, since readers never trust a wake-up's content.
 */
export function pollingWakeUps(intervalMs: number = pollingWakeUpMs): WakeUps {
  return interval(intervalMs).pipe(
    map(() => undefined),
    share(),
  );
}

/** Wake-ups from the embedded store, which runs LISTEN/NOTIFY in-process. */
export function pgliteWakeUps(pglite: PGlite): WakeUps {
  return new Observable<void>((subscriber) => {
    let unlisten: (() => Promise<void>) | null = null;
    let stopped = false;
    pglite
      .listen(eventsChannel, () => subscriber.next())
      .then((stop) => {
        if (stopped) void stop().catch(() => undefined);
        else unlisten = stop;
      })
      .catch(() => undefined);
    return () => {
      stopped = true;
      void unlisten?.().catch(() => undefined);
    };
  }).pipe(share());
}
