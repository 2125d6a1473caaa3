import pg from 'pg';
import type { RunnerLock } from './ledger-store.ts';
import { explainRefusal } from './postgres-pool.ts';

// The projection runners' locks on PostgreSQL: one runner per projection across processes.

/**
 * A session advisory lock on a connection of its own, so that it lasts while the holder
 * lives and is released by the server when the holder's connection dies.
 */
export async function tryAdvisoryLock(
  config: pg.ClientConfig,
  key: string,
): Promise<RunnerLock | null> {
  const client = new pg.Client(config);
  const lost = new AbortController();
  const onLost = () => lost.abort(new Error(`lost the runner lock ${key}`));
  client.on('error', onLost);
  client.on('end', onLost);
  await client.connect();
  try {
    const result = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
      [key],
    );
    if (!result.rows[0]?.locked) {
      await client.end();
      return null;
    }
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return {
    lost: lost.signal,
    // Ending the session releases its advisory locks.
    release: () => client.end().catch(() => undefined),
  };
}

/** How often a lock held in an open transaction proves its connection alive. */
const transactionLockCheckMs = 5_000;

/**
 * The runner lock through a transaction pooler, where a session advisory lock would be
 * held by a server connection the pooler hands to other clients (who could then take or
 * release it), and left behind when this client goes. Instead a transaction-level advisory
 * lock (same key, so it excludes session holders elsewhere) in a transaction kept open on a
 * connection of its own: the pooler pins one server connection to it until it ends, and
 * rolls it back, releasing the lock, when this client disconnects. The transaction takes no
 * transaction id, so it holds back no gap-safe reader; a statement every few seconds keeps
 * it from counting as idle (the server's `idle_in_transaction_session_timeout`, set in it,
 * ends it 30 s after this process stops answering) and notices a dead connection.
 */
export async function tryTransactionLock(
  config: pg.ClientConfig,
  key: string,
  perTransaction: string,
): Promise<RunnerLock | null> {
  const client = new pg.Client(config);
  const lost = new AbortController();
  const checking: { timer?: NodeJS.Timeout } = {};
  const onLost = () => {
    clearInterval(checking.timer);
    lost.abort(new Error(`lost the runner lock ${key}`));
    void client.end().catch(() => undefined);
  };
  client.on('error', onLost);
  client.on('end', onLost);
  try {
    await client.connect();
  } catch (error) {
    throw explainRefusal(error);
  }
  // Rolled back before ending, so the pooler may reuse the server connection.
  const end = async () => {
    clearInterval(checking.timer);
    client.off('end', onLost);
    client.off('error', onLost);
    client.on('error', () => undefined);
    await client.query('rollback').catch(() => undefined);
    await client.end().catch(() => undefined);
  };
  try {
    await client.query(`begin; ${perTransaction}`);
    const result = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_xact_lock(hashtextextended($1, 0)) as locked',
      [key],
    );
    if (!result.rows[0]?.locked) {
      await end();
      return null;
    }
  } catch (error) {
    await end();
    throw error;
  }
  checking.timer = setInterval(
    () => void client.query('select 1').catch(onLost),
    transactionLockCheckMs,
  );
  checking.timer.unref();
  return { lost: lost.signal, release: end };
}
