import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StoreBusyError, StoreLockLostError } from '../errors.ts';

/** The file in the data folder that names the lock's holder. */
export const storeLockFile = 'lock.json';

/** What the lock file says about its holder. */
interface LockHolder {
  pid: number;
  hostname: string;
  /** Random per opening: tells this holder from a later one with the same pid. */
  token: string;
  takenAt: string;
  /** The holder process's start time (the pid-file fallback only), to spot a reused pid. */
  processStartedAt: number | null;
  /** The URL the holder serves the store at (`headway serve`), once it listens. */
  url?: string;
}

/** Tokens of the locks this process holds, by folder: whose files `advertiseServedUrl` may rewrite. */
const heldTokens = new Map<string, string>();

/** The embedded store's lock, held by this process until `release`, or until lost. */
export interface StoreLock {
  /** Aborted with a StoreLockLostError once the lock file is found removed or taken over. */
  readonly lost: AbortSignal;
  /** Gives the lock up; the next process may open the store at once. */
  release(): Promise<void>;
}

/** Options of `acquireStoreLock`. */
export interface StoreLockOptions {
  /** How often the holder reads its lock file back (default 1,000 ms). */
  checkIntervalMs?: number;
  /** `socket` on Linux, `pid-file` elsewhere; tests pick one. */
  method?: 'socket' | 'pid-file';
}

/**
 * Takes the lock of the embedded store in `folder` (which must exist), or throws
 * StoreBusyError naming the process that holds it. The lock never goes stale by time: a
 * paused holder keeps it, and a dead holder's lock is taken at once.
 *
 * On Linux the lock is a unix socket bound in the abstract namespace under a name derived
 * from the folder's identity: the kernel lets one process bind it and releases it the
 * moment that process dies. Abstract names are per network namespace, so two containers
 * sharing the folder do not see each other's socket; the lock file's token catches that
 * (the earlier holder stops at its next check), but not before both have opened it.
 *
 * Elsewhere a lock file left by a process that is gone (no such pid, or a pid reused by a
 * process started at another time) is taken over; a holder on another host is assumed
 * alive. Two processes taking over the same dead holder's file at once can both believe
 * they won; the one whose token was overwritten finds out at its next check and stops.
 *
 * @example
 * const lock = await acquireStoreLock('/var/lib/headway');
 * lock.lost.addEventListener('abort', () => console.error(lock.lost.reason));
 * await lock.release();
 */
export async function acquireStoreLock(
  folder: string,
  options: StoreLockOptions = {},
): Promise<StoreLock> {
  const path = join(folder, storeLockFile);
  const method = options.method ?? (process.platform === 'linux' ? 'socket' : 'pid-file');
  const holder: LockHolder = {
    pid: process.pid,
    hostname: hostname(),
    token: randomBytes(16).toString('hex'),
    takenAt: new Date().toISOString(),
    processStartedAt: method === 'pid-file' ? processStartedAt(process.pid) : null,
  };
  let server: Server | null = null;
  if (method === 'socket') {
    server = await bindExclusively(await socketName(folder));
    if (!server) {
      const current = await readHolder(path).catch(() => null);
      throw new StoreBusyError(folder, describe(current), current?.url);
    }
    // Any lock file here is a dead holder's: overwrite it, whole or not at all.
    const draft = `${path}.${holder.token}`;
    try {
      await writeFile(draft, JSON.stringify(holder));
      await rename(draft, path);
    } catch (error) {
      server.close();
      await unlink(draft).catch(() => undefined);
      throw error;
    }
  } else {
    await takeLockFile(folder, path, holder);
  }
  heldTokens.set(folder, holder.token);
  return watch(folder, path, holder.token, server, options.checkIntervalMs ?? 1_000);
}

/**
 * Names, in the lock file of an embedded store this process holds, the URL it serves the
 * store at, so that a process that finds the store busy can read through that server
 * (`StoreBusyError.servedAt`). Returns false, writing nothing, when this process does not
 * hold the lock of `folder` (the path `acquireStoreLock` was given).
 *
 * @example
 * await advertiseServedUrl('/var/lib/headway', 'http://127.0.0.1:4680');
 */
export async function advertiseServedUrl(folder: string, url: string): Promise<boolean> {
  const token = heldTokens.get(folder);
  const path = join(folder, storeLockFile);
  const current = token === undefined ? null : await readHolder(path);
  if (!current || current.token !== token) return false;
  // Written whole, then renamed over the file: a reader never sees it half-written.
  const draft = `${path}.${token}`;
  await writeFile(draft, JSON.stringify({ ...current, url }));
  await rename(draft, path);
  return true;
}

/** The folder's identity (device and inode), so every path to it names one socket. */
async function socketName(folder: string): Promise<string> {
  const { dev, ino } = await stat(folder, { bigint: true });
  return `\0headway-store:${createHash('sha256').update(`${dev}:${ino}`).digest('hex')}`;
}

/** Listens on `name`, or returns null when another process already does. */
function bindExclusively(name: string): Promise<Server | null> {
  // Nobody talks to the socket: a stray connection is dropped, so it keeps nothing alive.
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(null);
      else reject(error);
    });
    // `exclusive`: a cluster worker binds the name itself instead of sharing the primary's.
    server.listen({ path: name, exclusive: true }, () => {
      server.unref();
      resolve(server);
    });
  });
}

/** The pid-file fallback: creates the lock file, taking it over from a dead holder. */
async function takeLockFile(folder: string, path: string, holder: LockHolder): Promise<void> {
  // Written whole first, then linked into place: link fails if the file exists, and a
  // reader never sees it half-written.
  const draft = `${path}.${holder.token}`;
  await writeFile(draft, JSON.stringify(holder));
  try {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        await link(draft, path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const current = await readHolder(path);
      if (current && holderAlive(current)) {
        throw new StoreBusyError(folder, describe(current), current.url);
      }
      // Remove the dead holder's file, unless another process replaced it meanwhile.
      if ((await readHolder(path))?.token === current?.token) {
        await unlink(path).catch(ignoreMissing);
      }
    }
    throw new StoreBusyError(folder, 'another process keeps taking it');
  } finally {
    await unlink(draft).catch(ignoreMissing);
  }
}

/** Reads the lock back every interval; aborts `lost` when it no longer carries `token`. */
function watch(
  folder: string,
  path: string,
  token: string,
  server: Server | null,
  intervalMs: number,
): StoreLock {
  const lost = new AbortController();
  let released = false;
  let timer: NodeJS.Timeout | undefined;
  const closeServer = () =>
    new Promise<void>((resolve) => (server?.listening ? server.close(() => resolve()) : resolve()));
  const check = async () => {
    // A file that cannot be read now (EMFILE, EIO) is read again at the next check.
    const current = await readHolder(path).catch(() => 'unreadable' as const);
    if (released) return;
    if (current === 'unreadable' || current?.token === token) {
      schedule();
      return;
    }
    const received = current ? `names ${describe(current)}` : 'was removed';
    if (heldTokens.get(folder) === token) heldTokens.delete(folder);
    lost.abort(new StoreLockLostError(folder, received));
    void closeServer();
  };
  const schedule = () => {
    if (released || lost.signal.aborted) return;
    timer = setTimeout(() => void check(), intervalMs).unref();
  };
  schedule();
  return {
    lost: lost.signal,
    release: async () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      if (heldTokens.get(folder) === token) heldTokens.delete(folder);
      // The file first: once the socket is closed, a new holder may write its own.
      if ((await readHolder(path).catch(() => null))?.token === token) {
        await unlink(path).catch(ignoreMissing);
      }
      await closeServer();
    },
  };
}

/** The lock file's holder; null when there is none or it is not a lock file of ours. */
async function readHolder(path: string): Promise<LockHolder | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const holder = JSON.parse(text) as Partial<LockHolder>;
    if (typeof holder.token !== 'string' || typeof holder.pid !== 'number') return null;
    // Only a web address is followed; anything else in the file is left unread.
    const { url, ...rest } = holder as LockHolder;
    return typeof url === 'string' && /^https?:\/\/\S+$/.test(url) ? { ...rest, url } : rest;
  } catch {
    return null;
  }
}

function describe(holder: LockHolder | null): string | undefined {
  return holder ? `pid ${holder.pid} on ${holder.hostname}, since ${holder.takenAt}` : undefined;
}

/** Whether the lock file's holder may still run; on another host it cannot be told. */
function holderAlive(holder: LockHolder): boolean {
  if (holder.hostname !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // The pid runs, but pids are reused: it is the holder only if it started when the holder did.
  const started = processStartedAt(holder.pid);
  return (
    started === null || holder.processStartedAt === null || started === holder.processStartedAt
  );
}

/** When a process started, to the second, as `ps` tells; null where there is no `ps`. */
function processStartedAt(pid: number): number | null {
  try {
    const output = execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    });
    const started = Date.parse(output.trim());
    return Number.isNaN(started) ? null : started;
  } catch {
    return null;
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
}
