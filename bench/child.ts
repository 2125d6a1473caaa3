import { spawn } from 'node:child_process';

/**
 * Runs a benchmark script in a child Node process (TypeScript through tsx) and returns
 * the JSON of the last line it prints; `signal` kills it.
 */
export function runBenchChild<T>(
  script: string,
  options: { nodeArgs?: string[]; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...(options.nodeArgs ?? []), '--import', 'tsx', script],
      {
        env: { ...process.env, ...options.env },
        stdio: ['ignore', 'pipe', 'inherit'],
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = output.trim().split('\n').at(-1) ?? '';
      if (code !== 0) {
        reject(new Error(`${script} exited with ${signal ?? code}: ${line}`));
        return;
      }
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new Error(`${script} printed no result: ${JSON.stringify(output)}`));
      }
    });
  });
}
