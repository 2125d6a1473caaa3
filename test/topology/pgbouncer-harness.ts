import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { freePort } from './haproxy.ts';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';

/** The pgbouncer executable on PATH (or in Debian's /usr/sbin), else null. */
export function findPgbouncer(): string | null {
  const folders = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  for (const folder of folders) {
    if (!folder) continue;
    const candidate = join(folder, 'pgbouncer');
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

/** A PgBouncer this test started, in transaction pooling mode, in front of one database. */
export interface Pooler {
  /** The database through the pooler: the target URL with the pooler's port. */
  url: string;
  /** The pooler's admin console (`SHOW SERVERS` …). */
  adminUrl: string;
  /** Backend pids of the pooler's server connections, from `SHOW SERVERS`. */
  serverPids(): Promise<number[]>;
  /** The pooler's log so far, for failure messages. */
  log(): Promise<string>;
  /** Stops the pooler (its process group) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Writes a pgbouncer.ini and a userlist into a temporary folder and starts PgBouncer on a
 * free loopback port, as the `postgres` user when this process is root (PgBouncer refuses
 * to run as root). Stock settings apart from the pool: `pool_mode = transaction`, trust
 * authentication, and no `ignore_startup_parameters`.
 */
export async function startPgbouncer(
  executable: string,
  targetUrl: string,
  options: { poolSize: number },
): Promise<Pooler> {
  const target = new URL(targetUrl);
  const database = decodeURIComponent(target.pathname.slice(1));
  const user = decodeURIComponent(target.username) || 'postgres';
  const port = await freePort();
  const folder = await mkdtemp(join(tmpdir(), 'pgbouncer-'));
  // PgBouncer runs as postgres: it must read its files and write its log there.
  await chmod(folder, 0o777);
  const logFile = join(folder, 'pgbouncer.log');
  await writeFile(join(folder, 'userlist.txt'), `"${user}" ""\n`, { mode: 0o644 });
  await writeFile(
    join(folder, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = host=${target.hostname || '127.0.0.1'} port=${target.port || '5432'} dbname=${database}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(folder, 'userlist.txt')}`,
      `admin_users = ${user}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      'max_client_conn = 200',
      `logfile = ${logFile}`,
      `pidfile = ${join(folder, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const ini = join(folder, 'pgbouncer.ini');
  const asRoot = process.getuid?.() === 0;
  const [command, args] = asRoot
    ? ['runuser', ['-u', 'postgres', '--', executable, ini]]
    : [executable, [ini]];
  // A process group of its own, so that stopping it stops runuser and PgBouncer alike.
  const child: ChildProcess = spawn(command, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));

  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  const adminUrl = new URL(url);
  adminUrl.pathname = '/pgbouncer';
  const log = async () =>
    `${output}${await readFile(logFile, 'utf8').catch(() => '(no log file)')}`;

  const stop = async () => {
    if (running && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // Gone already.
      }
      const killed = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5_000)),
      ]);
      if (!killed) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Gone already.
        }
        await exited;
      }
    }
    await rm(folder, { recursive: true, force: true });
  };

  // Ready once a query through it answers.
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!running) {
      const text = await log();
      await stop();
      throw new Error(`pgbouncer exited at start:\n${text}`);
    }
    const client = new pg.Client({
      connectionString: url.toString(),
      connectionTimeoutMillis: 1_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) {
        const text = await log();
        await stop();
        throw new Error(`pgbouncer did not answer within 15 s (${String(error)}):\n${text}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  return {
    url: url.toString(),
    adminUrl: adminUrl.toString(),
    async serverPids() {
      const client = new pg.Client({ connectionString: adminUrl.toString() });
      client.on('error', () => undefined);
      await client.connect();
      try {
        // The admin console speaks the simple protocol only: no parameters.
        const { rows } = await client.query<{ database: string; remote_pid: string | number }>(
          'SHOW SERVERS',
        );
        return rows
          .filter((row) => row.database === database)
          .map((row) => Number(row.remote_pid))
          .filter((pid) => pid > 0);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    log,
    stop,
  };
}
