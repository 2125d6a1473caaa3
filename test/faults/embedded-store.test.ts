import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StoreBusyError, StoreLockLostError } from '../../src/errors.ts';
import { openLedger } from '../../src/open-ledger.ts';
import { acquireStoreLock, storeLockFile } from '../../src/store/store-lock.ts';
import type { StoreLock } from '../../src/store/store-lock.ts';
import { cliEnv } from '../cli-runner.ts';

const writerScript = new URL('./fixtures/embedded-writer.ts', import.meta.url).pathname;
const streamId = 'fault-stream';
/** The writer's batch size: at most this many events may be stored but not acknowledged. */
const batchSize = 5;

/**
 * How long the holder is paused (SIGSTOP): longer than every timeout the old lock had (it
 * went stale after 15 s without its 5 s refresh), so a lock that expires by time would
 * let the second process in while the holder sleeps.
 */
const pauseMs = 20_000;

interface WriterLine {
  opened?: true;
  acked?: number;
  closed?: true;
  error?: string;
  message?: string;
}

/** A writer child process (fixtures/embedded-writer.ts) whose JSON lines are collected. */
class Writer {
  readonly lines: WriterLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcess;
  private partial = '';

  constructor(dataDir: string) {
    this.child = spawn(process.execPath, ['--import', 'tsx', writerScript, dataDir, streamId], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.partial + chunk).split('\n');
      // A line cut short by a kill has no newline yet; it never counts.
      this.partial = parts.pop()!;
      this.lines.push(...parts.map((line) => JSON.parse(line) as WriterLine));
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** The most events the writer said are stored. */
  get acked(): number {
    return Math.max(0, ...this.lines.map((line) => line.acked ?? 0));
  }

  get error(): WriterLine | undefined {
    return this.lines.find((line) => line.error !== undefined);
  }

  /** Waits until the writer acknowledged at least `count` events. */
  async waitForAcked(count: number): Promise<void> {
    await until(
      () => this.acked >= count || this.error !== undefined,
      () => `the writer to acknowledge ${count} events (it did ${this.acked})`,
      () => this.stderr,
    );
    expect(this.error).toBeUndefined();
  }
}

/** Polls until `check` holds; fails with what it waited for, after a generous bound. */
async function until(
  check: () => boolean,
  what: () => string,
  detail: () => string = () => '',
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}. ${detail()}`);
    await sleep(25);
  }
}

/**
 * Opens the store (on the first try: the writer is gone, so its lock must be too) and
 * checks that it holds the job's start and then every acknowledged event, once each, with
 * versions 2..n+1.
 */
async function expectAcknowledgedEvents(dataDir: string, acked: number): Promise<number> {
  const ledger = await openLedger({ dataDir });
  try {
    const [start] = await ledger.readStream(streamId, { limit: 1 });
    expect(start?.type).toBe('job.started');
    const versions: number[] = [];
    const ids = new Set<string>();
    for (;;) {
      const page = await ledger.readStream(streamId, { fromVersion: versions.length + 2 });
      if (page.length === 0) break;
      for (const event of page) {
        versions.push(event.version);
        ids.add(event.eventId);
        expect(event.data).toEqual({ n: event.version - 1 });
      }
    }
    expect(versions).toEqual(versions.map((_, index) => index + 2));
    expect(ids.size).toBe(versions.length);
    expect(versions.length).toBeGreaterThanOrEqual(acked);
    expect(versions.length).toBeLessThanOrEqual(acked + batchSize);
    return versions.length;
  } finally {
    await ledger.close();
  }
}

describe('the embedded store under faults of its holder process', () => {
  let root: string;
  const writers: Writer[] = [];
  let folderCount = 0;
  const newFolder = () => join(root, `store-${(folderCount += 1)}`);
  const startWriter = (dataDir: string) => {
    const writer = new Writer(dataDir);
    writers.push(writer);
    return writer;
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'headway-faults-'));
  });
  afterEach(async () => {
    // SIGKILL ends a stopped process too.
    for (const writer of writers.splice(0)) {
      writer.child.kill('SIGKILL');
      await writer.exited;
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps a paused holder its lock: another process gets store_busy, and no acknowledged event is lost', async () => {
    const dataDir = newFolder();
    const writer = startWriter(dataDir);
    await writer.waitForAcked(20);
    expect(writer.child.kill('SIGSTOP')).toBe(true);
    try {
      await expect(openLedger({ dataDir })).rejects.toBeInstanceOf(StoreBusyError);
      await sleep(pauseMs);
      const busy = openLedger({ dataDir });
      await expect(busy).rejects.toMatchObject({ code: 'store_busy' });
      await expect(busy).rejects.toThrow(`pid ${writer.child.pid} on ${hostname()}`);
    } finally {
      writer.child.kill('SIGCONT');
    }
    // It still holds the lock, and goes on writing.
    await writer.waitForAcked(writer.acked + 20);
    writer.child.kill('SIGTERM');
    expect(await writer.exited).toEqual({ code: 0, signal: null });
    expect(writer.lines.at(-1)).toEqual({ closed: true });
    expect(await expectAcknowledgedEvents(dataDir, writer.acked)).toBe(writer.acked);
  }, 180_000);

  it('frees a killed holder’s lock at once: the next process opens it on the first try', async () => {
    const dataDir = newFolder();
    const writer = startWriter(dataDir);
    await writer.waitForAcked(20);
    writer.child.kill('SIGKILL');
    expect(await writer.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await expectAcknowledgedEvents(dataDir, writer.acked);
  }, 180_000);

  it.each([
    ['replaced', (path: string) => writeFile(path, intruder())],
    ['removed', (path: string) => unlink(path)],
  ])(
    'stops a holder whose lock file was %s: its next append fails with store_lock_lost',
    async (_, compromise) => {
      const dataDir = newFolder();
      const writer = startWriter(dataDir);
      await writer.waitForAcked(20);
      await compromise(join(dataDir, storeLockFile));
      await until(
        () => writer.error !== undefined,
        () => `the writer to fail (it acknowledged ${writer.acked} events)`,
        () => writer.stderr,
      );
      expect(writer.error).toMatchObject({
        error: 'store_lock_lost',
        message: expect.stringMatching(/lost its lock: expected its lock file to name this/),
      });
      expect(await writer.exited).toEqual({ code: 1, signal: null });
      await expectAcknowledgedEvents(dataDir, writer.acked);
    },
    180_000,
  );
});

/** A lock file naming another holder. */
function intruder(pid = 1, host = 'intruder'): string {
  return JSON.stringify({
    pid,
    hostname: host,
    token: 'intruder',
    takenAt: new Date().toISOString(),
    processStartedAt: 0,
  });
}

describe.each(['socket', 'pid-file'] as const)('acquireStoreLock (%s)', (method) => {
  let folder: string;
  const locks: StoreLock[] = [];
  const acquire = async () => {
    const lock = await acquireStoreLock(folder, { method, checkIntervalMs: 20 });
    locks.push(lock);
    return lock;
  };

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-lock-'));
  });
  afterEach(async () => {
    for (const lock of locks.splice(0)) await lock.release();
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('is exclusive until released, then taken at once', async () => {
    const first = await acquire();
    await expect(acquire()).rejects.toThrow(
      new RegExp(`is open in another process \\(pid ${process.pid} on `),
    );
    await first.release();
    await acquire();
  });

  it('reports a removed or replaced lock file as lost', async () => {
    const lock = await acquire();
    await unlink(join(folder, storeLockFile));
    await until(
      () => lock.lost.aborted,
      () => 'the lock to be lost',
    );
    expect(lock.lost.reason).toBeInstanceOf(StoreLockLostError);
    expect((lock.lost.reason as Error).message).toContain('but it was removed');
  });

  // Only the pid-file method reads holders from the file; the socket needs no takeover.
  if (method === 'pid-file') {
    it('takes over a dead or reused pid’s file, not another host’s', async () => {
      const path = join(folder, storeLockFile);
      // A pid that ran this process, but at another time: reused, so the holder is gone.
      await writeFile(path, intruder(process.pid, hostname()));
      await (await acquire()).release();
      const gone = spawn(process.execPath, ['-e', '']);
      await new Promise((resolve) => gone.once('exit', resolve));
      await writeFile(path, intruder(gone.pid, hostname()));
      await (await acquire()).release();
      await writeFile(path, intruder(process.pid, 'elsewhere'));
      await expect(acquire()).rejects.toThrow(`pid ${process.pid} on elsewhere`);
    });
  }
});
