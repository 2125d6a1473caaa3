import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.ts';
import type { ReplicaStore } from './replica.ts';
import type { WakeUps } from './wake-ups.ts';

/** Where the ledger keeps its log. */
export interface LedgerLocation {
  store: 'postgres' | 'pglite';
  /** A redacted URL for PostgreSQL, the data folder (or `memory://`) for PGlite. */
  description: string;
}

/** A lock that makes one process the runner of a projection. */
export interface RunnerLock {
  /** Aborted when the lock is lost, for instance with its connection. */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/** What a store adapter builds: the only parts that differ between PostgreSQL and PGlite. */
export interface LedgerStore {
  db: Kysely<Database>;
  location: LedgerLocation;
  wakeUps: WakeUps;
  /** A hot standby that serves reads (`readDatabaseUrl`), if the ledger has one. */
  replica?: ReplicaStore;
  /** Takes the runner lock of a projection, or returns null when another holder has it. */
  tryLock(name: string): Promise<RunnerLock | null>;
  close(): Promise<void>;
}
