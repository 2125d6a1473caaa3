import { describe, expect, it } from 'vitest';
import { holdLockForever } from '../src/store/lock-holder.ts';
import type { RunnerLock } from '../src/store/ledger-store.ts';

// The loop of the background tasks one process runs at a time: it waits while another holds
// the lock, runs while it holds it, and after an error releases, backs off and tries again.

/** A lock that records its release and can be lost. */
function fakeLock(log: string[], name: string): RunnerLock & { lose(): void } {
  const lost = new AbortController();
  return {
    lost: lost.signal,
    lose: () => lost.abort(),
    release: () => {
      log.push(`release ${name}`);
      return Promise.resolve();
    },
  };
}

describe('holdLockForever', () => {
  it('waits while another holds the lock, recovers from an error, and stops when told', async () => {
    const log: string[] = [];
    const stop = new AbortController();
    const locks = [null, fakeLock(log, 'first'), fakeLock(log, 'second')];
    let attempts = 0;
    let holds = 0;
    await holdLockForever(
      {
        tryLock: () => {
          attempts += 1;
          const lock = locks.shift();
          if (lock === undefined) return Promise.reject(new Error('no more locks in this test'));
          return Promise.resolve(lock);
        },
        lockRetryMs: 1,
        signal: stop.signal,
        onError: (error) => log.push(`error ${(error as Error).message}`),
      },
      ({ signal: holding }) => {
        holds += 1;
        if (holds === 1) return Promise.reject(new Error('the database went away'));
        log.push('holding');
        stop.abort();
        expect(holding.aborted).toBe(true);
        return Promise.resolve();
      },
    );
    expect(attempts).toBe(3);
    expect(log).toEqual([
      'error the database went away',
      'release first',
      'holding',
      'release second',
    ]);
  });

  it('returns to waiting for the lock when it is lost', async () => {
    const log: string[] = [];
    const stop = new AbortController();
    const first = fakeLock(log, 'first');
    const locks: (RunnerLock | null)[] = [first, fakeLock(log, 'second')];
    await holdLockForever(
      {
        tryLock: () => Promise.resolve(locks.shift() ?? null),
        lockRetryMs: 1,
        signal: stop.signal,
      },
      ({ signal: holding }) => {
        if (locks.length === 1) {
          // Holding the first: it is lost (its connection died), and the hold must end.
          first.lose();
          expect(holding.aborted).toBe(true);
          return Promise.resolve();
        }
        log.push('holding the second');
        stop.abort();
        return Promise.resolve();
      },
    );
    expect(log).toEqual(['release first', 'holding the second', 'release second']);
  });
});
