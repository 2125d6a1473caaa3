import { execFile, spawn } from 'node:child_process';
import { expect } from 'vitest';

/** The `headway` command from its sources (the package test runs the compiled bin). */
export const headwayBin = new URL('./headway-source.mjs', import.meta.url).pathname;

/** The environment of a CLI run: no ambient database or server URL, so the flags decide. */
export function cliEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.HEADWAY_DATABASE_URL;
  // Read commands follow these to a server; a test names its server itself.
  delete env.HEADWAY_URL;
  delete env.HEADWAY_TOKEN;
  return env;
}

/** What a finished CLI run printed and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `headway` with these arguments (and extra environment variables) to the end. */
export function runHeadway(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [headwayBin, ...args],
      { env: { ...cliEnv(), ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The JSON a successful run printed; fails the test on any stderr or a non-zero exit. */
export function jsonOf<T>(run: CliRun): T {
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as T;
}

/** A `headway serve` running on a store: its URL, and how to stop it (resolves to its exit code). */
export interface ServedStore {
  url: string;
  stop(): Promise<number | null>;
}

/** `headway serve --port 0` on an embedded store, once it has said where it listens. */
export async function serveStore(
  store: string,
  serveArgs: readonly string[] = [],
): Promise<ServedStore> {
  const args = [headwayBin, '--data-dir', store, 'serve', '--port', '0', ...serveArgs];
  const child = spawn(process.execPath, args, { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const serving = /Headway serving .* on (http:\/\/\S+) \(API/;
  const deadline = Date.now() + 60_000;
  while (!serving.test(output)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`headway serve did not start: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: serving.exec(output)![1]!,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
