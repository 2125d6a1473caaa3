import { readdir, readFile, readlink } from 'node:fs/promises';
import type pg from 'pg';

// Which process holds a persisted projection's runner. The lock is a session advisory lock
// taken by `tryAdvisoryLock` in src/open-ledger.ts on a connection of its own, keyed
// `headway:<schema>:<projection>` and named `<applicationName>-runner` in
// pg_stat_activity. Every `headway serve` names its connections `headway`, so the name
// tells the runner's connection from the others but not one server from another: the
// connection's client port does, looked up among the sockets each server process holds.

/** The backend holding a runner's lock, and the client end of its connection. */
export interface LockHolder {
  backendPid: number;
  applicationName: string;
  clientAddress: string | null;
  clientPort: number;
}

/**
 * The holder of `projection`'s runner lock in the connection's own database (never another
 * database's sessions), or null when no session holds it.
 */
export async function runnerLockHolder(
  admin: pg.Client,
  projection: string,
  schema = '',
): Promise<LockHolder | null> {
  const { rows } = await admin.query<{
    pid: number;
    application_name: string;
    client_addr: string | null;
    client_port: number;
  }>(
    `with lock_key as (select hashtextextended($1, 0) as k)
     select l.pid, a.application_name, host(a.client_addr) as client_addr, a.client_port
       from pg_locks l
       join pg_stat_activity a on a.pid = l.pid
       cross join lock_key
      where l.locktype = 'advisory' and l.granted and l.objsubid = 1
        and l.database = (select oid from pg_database where datname = current_database())
        and a.datname = current_database()
        and l.classid::bigint = ((lock_key.k >> 32) & 4294967295)
        and l.objid::bigint = (lock_key.k & 4294967295)`,
    [`headway:${schema}:${projection}`],
  );
  if (rows.length > 1) throw new Error(`${rows.length} sessions hold one advisory lock`);
  const row = rows[0];
  if (!row) return null;
  return {
    backendPid: row.pid,
    applicationName: row.application_name,
    clientAddress: row.client_addr,
    clientPort: row.client_port,
  };
}

/**
 * The inode of the socket whose local port is `localPort` and remote port `remotePort`
 * (Linux: /proc/net/tcp and tcp6), or null.
 */
async function socketInode(localPort: number, remotePort: number): Promise<string | null> {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const local = Number.parseInt(fields[1]!.split(':')[1]!, 16);
      const remote = Number.parseInt(fields[2]!.split(':')[1]!, 16);
      if (local === localPort && remote === remotePort) return fields[9]!;
    }
  }
  return null;
}

/** True when process `pid` holds the socket with this inode. */
async function holdsSocket(pid: number, inode: string): Promise<boolean> {
  const folder = `/proc/${pid}/fd`;
  const fds = await readdir(folder).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`${folder}/${fd}`).catch(() => '');
    if (target === `socket:[${inode}]`) return true;
  }
  return false;
}

/**
 * Which of `candidates` (process ids) holds the client end of a connection to the
 * database at `databasePort` from `clientPort`; null when none does or when /proc cannot
 * tell (not Linux).
 */
export async function processOfConnection(
  clientPort: number,
  databasePort: number,
  candidates: readonly number[],
): Promise<number | null> {
  const inode = await socketInode(clientPort, databasePort);
  if (inode === null) return null;
  for (const pid of candidates) if (await holdsSocket(pid, inode)) return pid;
  return null;
}
