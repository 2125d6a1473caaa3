import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { LogCursor } from '../cursors.ts';
import type { WakeUps } from './wake-ups.ts';

/** A hot standby of the ledger's database that serves its reads (`readDatabaseUrl`). */
export interface ReplicaStore {
  db: Kysely<Database>;
  /** A redacted URL. */
  description: string;
  /** A standby cannot LISTEN, so these are a timer. */
  wakeUps: WakeUps;
}

/** How far a read replica trails the primary, as the replica and the primary tell it. */
export interface ReplicationStatus {
  /** The replica's redacted URL. */
  replica: string;
  /** False when the read URL reaches a server that is not a standby (a primary, say). */
  inRecovery: boolean;
  /**
   * Milliseconds behind: 0 once the replica has replayed the primary's WAL position read
   * just before; else the time since the last transaction it replayed committed.
   */
  lagMs: number;
  /** WAL bytes the primary has written and the replica not replayed yet. */
  lagBytes: number;
  /** True while replay is paused on the replica (`pg_wal_replay_pause()`). */
  replayPaused: boolean;
}

/** How long `readsAfter` waits for a replica by default before reading from the primary. */
export const defaultReplayWaitMs = 2_000;

/** The primary's WAL position, then where the replica stands against it. */
export async function replicationStatus(
  primary: Kysely<Database>,
  replica: ReplicaStore,
): Promise<ReplicationStatus> {
  const { rows: head } = await sql<{
    lsn: string;
  }>`select pg_current_wal_lsn()::text as lsn`.execute(primary);
  const lsn = head[0]!.lsn;
  const { rows } = await sql<{
    in_recovery: boolean;
    lag_bytes: string | null;
    caught_up: boolean | null;
    since_replay_ms: number | null;
    paused: boolean;
  }>`select pg_is_in_recovery() as in_recovery,
            pg_wal_lsn_diff(${lsn}::pg_lsn, pg_last_wal_replay_lsn())::text as lag_bytes,
            pg_last_wal_replay_lsn() >= ${lsn}::pg_lsn as caught_up,
            (extract(epoch from clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::float8
              as since_replay_ms,
            pg_is_in_recovery() and pg_is_wal_replay_paused() as paused`.execute(replica.db);
  const row = rows[0]!;
  if (!row.in_recovery) {
    return {
      replica: replica.description,
      inRecovery: false,
      lagMs: 0,
      lagBytes: 0,
      replayPaused: false,
    };
  }
  return {
    replica: replica.description,
    inRecovery: true,
    lagMs: row.caught_up ? 0 : Math.max(0, Math.round(row.since_replay_ms ?? 0)),
    lagBytes: Math.max(0, Number(row.lag_bytes ?? 0)),
    replayPaused: row.paused,
  };
}

/** The first waits between checks of the replica; later ones repeat the last. */
const replayCheckDelaysMs = [2, 5, 10, 20, 50];

/**
 * Waits, at most `timeoutMs`, until the replica has replayed the commit of `cursor`'s
 * transaction: the transaction is visible in the replica's snapshot, so every event of it,
 * and of every transaction committed before it, reads there.
 */
export async function waitForReplay(
  replica: Kysely<Database>,
  cursor: LogCursor,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ replayed: boolean; waitedMs: number }> {
  const started = performance.now();
  const waited = () => Math.round(performance.now() - started);
  for (let check = 0; ; check++) {
    const { rows } = await sql<{
      replayed: boolean;
    }>`select pg_visible_in_snapshot(${cursor.transactionId.toString()}::xid8, pg_current_snapshot()) as replayed`.execute(
      replica,
    );
    if (rows[0]!.replayed) return { replayed: true, waitedMs: waited() };
    const left = timeoutMs - (performance.now() - started);
    if (left <= 0 || signal?.aborted) return { replayed: false, waitedMs: waited() };
    const delay = Math.min(
      left,
      replayCheckDelaysMs[Math.min(check, replayCheckDelaysMs.length - 1)]!,
    );
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
