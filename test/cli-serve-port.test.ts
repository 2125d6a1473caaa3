import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, headwayBin } from './cli-runner.ts';

// `headway serve`'s port: --port, else PORT, else 4680; a taken port is one clear line,
// and --next-free-port moves on to a later one. Ports come from the system (port 0),
// never assumed free.

/** A running `headway serve`, its output collected as it comes. */
class Serving {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [headwayBin, ...args], {
      env: { ...cliEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  /** The URL of the startup line, once printed; fails if the process ends first. */
  async url(): Promise<string> {
    const serving = /^Headway serving .* on (http:\/\/\S+) \(API: \1\/openapi\.json\)$/m;
    const deadline = Date.now() + 60_000;
    while (!serving.test(this.stdout)) {
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no startup line; stdout: ${this.stdout}; stderr: ${this.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return serving.exec(this.stdout)![1]!;
  }

  stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** Listens on a port the system picks, as another program holding it would. */
async function holdPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

describe('headway serve: its port', { timeout: 180_000 }, () => {
  let folder: string;
  let store: string;
  let held: { port: number; server: Server };

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-port-'));
    store = join(folder, 'store');
    held = await holdPort();
  });
  afterAll(async () => {
    await new Promise((resolve) => held.server.close(resolve));
    await rm(folder, { recursive: true, force: true });
  });

  it('fails with one clear line and exit 1 when the port is taken', async () => {
    const serving = new Serving(['--data-dir', store, 'serve', '--port', String(held.port)]);
    expect(await serving.exited).toBe(1);
    expect(serving.stderr).toBe(
      `headway: Port ${held.port} on 127.0.0.1 is in use by another process: expected a free port; choose another with --port <n> or PORT=<n> (--port 0 takes any free one), or add --next-free-port to take the next free one\n`,
    );
    expect(serving.stdout).not.toContain('Headway serving');
  });

  it('with --next-free-port takes a later port, says which, and serves there', async () => {
    const serving = new Serving([
      '--data-dir',
      store,
      'serve',
      '--port',
      String(held.port),
      '--next-free-port',
    ]);
    try {
      const url = await serving.url();
      const port = Number(new URL(url).port);
      expect(port).toBeGreaterThan(held.port);
      expect(port).toBeLessThanOrEqual(held.port + 20);
      expect(serving.stdout).toContain(`Port ${held.port} was in use; took port ${port}.\n`);
      expect((await fetch(`${url}/health`)).status).toBe(200);
    } finally {
      expect(await serving.stop()).toBe(0);
    }
    expect(serving.stderr).toBe('');
  });

  it('listens on PORT, and --port wins over it', async () => {
    // A port the system handed out and that is free again.
    const probe = await holdPort();
    await new Promise((resolve) => probe.server.close(resolve));
    const fromEnvironment = new Serving(['--data-dir', store, 'serve'], {
      PORT: String(probe.port),
    });
    try {
      expect(await fromEnvironment.url()).toBe(`http://127.0.0.1:${probe.port}`);
    } finally {
      expect(await fromEnvironment.stop()).toBe(0);
    }
    // PORT names the taken port; the flag asks for any free one, and wins.
    const flagWins = new Serving(['--data-dir', store, 'serve', '--port', '0'], {
      PORT: String(held.port),
    });
    try {
      expect(await flagWins.url()).not.toBe(`http://127.0.0.1:${held.port}`);
    } finally {
      expect(await flagWins.stop()).toBe(0);
    }
    const bad = new Serving(['--data-dir', store, 'serve'], { PORT: 'eighty' });
    expect(await bad.exited).toBe(1);
    expect(bad.stderr).toBe(
      "headway: PORT: expected a port number from 0 to 65535 (0: any free one), received 'eighty' (invalid_input)\n",
    );
  });
});
