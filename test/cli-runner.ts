import { execFile } from 'node:child_process';
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

/** Runs `headway` with these arguments to the end. */
export function runHeadway(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [headwayBin, ...args],
      { env: cliEnv(), maxBuffer: 64 * 1024 * 1024 },
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
