import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { Observable, share } from 'rxjs';
import { reconnectDelayMs } from './backoff.ts';

/**
 * Hints that new events may have been committed. Live readers poll the log when one
 * arrives; a lost or late hint only delays them until their next timed poll.
 */
export type WakeUps = Observable<void>;

/** The channel the `events_notify` trigger of migration 0003 notifies. */
export const eventsChannel = 'headway_events';

/**
 * Wake-ups from PostgreSQL over one dedicated LISTEN connection, opened for the first
 * subscriber and closed after the last. A dropped connection reconnects with backoff and
 * wakes everyone once it is back, since notifications sent meanwhile are lost.
 */
export function postgresWakeUps(databaseUrl: string): WakeUps {
  return new Observable<void>((subscriber) => {
    let client: pg.Client | null = null;
    let stopped = false;
    let attempt = 0;
    let timer: NodeJS.Timeout | undefined;

    const reconnect = () => {
      if (stopped || timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void connect();
      }, reconnectDelayMs(attempt++));
    };

    const connect = async () => {
      const next = new pg.Client({
        connectionString: databaseUrl,
        application_name: 'headway-listen',
      });
      let lost = false;
      const onLost = () => {
        if (lost) return;
        lost = true;
        if (client === next) client = null;
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
      // Notifications sent while no connection listened are lost: wake everyone once.
      if (attempt > 0) subscriber.next();
      attempt = 0;
    };

    void connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      void client?.end().catch(() => undefined);
    };
  }).pipe(share());
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
