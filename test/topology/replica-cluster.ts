import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePorts } from './haproxy.ts';

// A primary and a hot standby of its own, for the replica tests and the scale benchmark
// alike: no vitest here, so a benchmark process can load it.

const run = promisify(execFile);

/** PostgreSQL's server binaries (`initdb`, `pg_ctl`, `pg_basebackup`), or null. */
export async function findServerBinaries(): Promise<string | null> {
  try {
    const { stdout } = await run('pg_config', ['--bindir']);
    const folder = stdout.trim();
    return existsSync(join(folder, 'initdb')) && existsSync(join(folder, 'pg_basebackup'))
      ? folder
      : null;
  } catch {
    return null;
  }
}

/** A primary and a streaming hot standby this process started, each on a free port. */
export interface ReplicatedCluster {
  /** The `postgres` database on the primary (trust authentication, user postgres). */
  primaryUrl: string;
  /** The same database on the standby. */
  standbyUrl: string;
  /** A URL of `database` on the primary, or on the standby. */
  urlOf(database: string, on: 'primary' | 'standby'): string;
  /** Stops replaying WAL on the standby (it keeps receiving it), as a lagging replica does. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** Stops the standby at once (`pg_ctl -m immediate`), as a crash would. */
  stopStandby(): Promise<void>;
  /** Starts the standby again; it reconnects to the primary and catches up. */
  startStandby(): Promise<void>;
  /** Both servers' logs so far, for failure messages. */
  logs(): Promise<string>;
  /** Stops both servers and removes their folders. */
  stop(): Promise<void>;
}

export interface ReplicatedClusterOptions {
  /**
   * Server settings for the primary (the standby copies them). Tests pass `fsync = off`;
   * the benchmark keeps the defaults, so its figures are a durable server's.
   */
  settings?: Record<string, string>;
}

/**
 * Makes a primary with `initdb` and a standby with `pg_basebackup -R` in a temporary
 * folder, and starts both with `pg_ctl` on free loopback ports: as the `postgres` user when
 * this process is root (PostgreSQL refuses to run as root). Nothing of the machine's own
 * server is touched.
 */
export async function startReplicatedCluster(
  options: ReplicatedClusterOptions = {},
): Promise<ReplicatedCluster> {
  const bin = await findServerBinaries();
  if (!bin) throw new Error('PostgreSQL server binaries not found (pg_config --bindir)');
  const folder = await mkdtemp(join(tmpdir(), 'headway-replica-'));
  // The servers run as postgres: they create their data folders, sockets and logs here.
  await chmod(folder, 0o777);
  const [primaryPort, standbyPort] = await freePorts(2);
  const primaryData = join(folder, 'primary');
  const standbyData = join(folder, 'standby');
  const asRoot = process.getuid?.() === 0;
  const as = (tool: string, args: string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { cwd: folder })
      : run(join(bin, tool), args, { cwd: folder });
  const started: string[] = [];
  const stop = async () => {
    for (const data of started.reverse()) {
      await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    }
    started.length = 0;
    await rm(folder, { recursive: true, force: true });
  };
  const logs = async () => {
    const read = (name: string) => readFile(join(folder, name), 'utf8').catch(() => `(no ${name})`);
    return `--- primary ---\n${await read('primary.log')}\n--- standby ---\n${await read('standby.log')}`;
  };

  try {
    await as('initdb', [
      '-D',
      primaryData,
      '--auth=trust',
      '--username=postgres',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    const settings: Record<string, string> = {
      listen_addresses: "'127.0.0.1'",
      port: String(primaryPort),
      unix_socket_directories: `'${folder}'`,
      max_connections: '60',
      shared_buffers: "'64MB'",
      wal_level: 'replica',
      max_wal_senders: '4',
      hot_standby: 'on',
      // Queries on the standby are not cancelled by replay conflicts while a test reads.
      hot_standby_feedback: 'on',
      ...options.settings,
    };
    await appendFile(
      join(primaryData, 'postgresql.conf'),
      '\n' +
        Object.entries(settings)
          .map(([name, value]) => `${name} = ${value}`)
          .join('\n') +
        '\n',
    );
    await as('pg_ctl', ['-D', primaryData, '-l', join(folder, 'primary.log'), '-w', 'start']);
    started.push(primaryData);
    // -R writes standby.signal and primary_conninfo: the copy starts as a streaming standby.
    await as('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      standbyData,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-sync',
    ]);
    await appendFile(join(standbyData, 'postgresql.auto.conf'), `port = ${standbyPort}\n`);
    await as('pg_ctl', ['-D', standbyData, '-l', join(folder, 'standby.log'), '-w', 'start']);
    started.push(standbyData);
  } catch (error) {
    const text = await logs();
    await stop();
    throw new Error(`the replicated cluster did not start: ${String(error)}\n${text}`);
  }

  const urlOf = (database: string, on: 'primary' | 'standby') =>
    `postgres://postgres@127.0.0.1:${on === 'primary' ? primaryPort : standbyPort}/${database}`;
  const onStandby = async (statement: string) => {
    const client = new pg.Client({ connectionString: urlOf('postgres', 'standby') });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  return {
    primaryUrl: urlOf('postgres', 'primary'),
    standbyUrl: urlOf('postgres', 'standby'),
    urlOf,
    pauseReplay: () => onStandby('select pg_wal_replay_pause()'),
    resumeReplay: () => onStandby('select pg_wal_replay_resume()'),
    stopStandby: async () => {
      await as('pg_ctl', ['-D', standbyData, '-m', 'immediate', '-w', 'stop']);
    },
    startStandby: async () => {
      await as('pg_ctl', ['-D', standbyData, '-l', join(folder, 'standby.log'), '-w', 'start']);
    },
    logs,
    stop,
  };
}

/** Waits until `database`, made on the primary, can be opened on the standby (bounded). */
export async function waitForDatabaseOnStandby(
  cluster: ReplicatedCluster,
  database: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: cluster.urlOf(database, 'standby') });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        throw new Error(`database ${database} did not reach the standby: ${String(error)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
