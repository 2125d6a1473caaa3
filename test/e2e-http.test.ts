import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, headwayBin } from './cli-runner.ts';

const producerScript = new URL('./fixtures/sdk-producer.ts', import.meta.url).pathname;

/** A child process whose output is collected; `exit` resolves with its code. */
function start(args: string[]) {
  const child = spawn(process.execPath, args, { env: cliEnv() });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.stderr += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, output, exit };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('end to end over HTTP: an SDK producer, an SSE tail and headway watch --url', () => {
  let folder: string;
  let server: ReturnType<typeof start>;
  let url: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-e2e-'));
    server = start([headwayBin, '--data-dir', join(folder, 'store'), 'serve', '--port', '0']);
    await until(() => /on (http:\/\/\S+) /.test(server.output.stdout), 'the server to listen');
    url = /on (http:\/\/\S+) /.exec(server.output.stdout)![1]!;
  });
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exit;
    await rm(folder, { recursive: true, force: true });
  });

  it('records a job from another process while two others follow it live', async () => {
    const items = 40;
    const producer = start([
      '--import',
      'tsx',
      producerScript,
      url,
      'e2e-job',
      String(items),
      '25',
    ]);
    await until(
      async () => (await fetch(`${url}/v1/jobs/e2e-job`)).status === 200,
      'the job to start',
    );
    const tail = start([
      headwayBin,
      'tail',
      '--url',
      url,
      '--job',
      'e2e-job',
      '--from-start',
      '--json',
    ]);
    const watch = start([headwayBin, 'watch', 'e2e-job', '--url', url, '--interval', '100']);
    // The items come once the watch shows the job, so it sees it run.
    await until(() => watch.output.stdout.includes(' running '), 'the watch to show the job');
    producer.child.stdin.write('go\n');

    expect(await producer.exit).toBe(0);
    expect(producer.output.stderr).toBe('');
    // The watch ends by itself when the job completes.
    expect(await watch.exit).toBe(0);
    const lines = watch.output.stdout.trim().split('\n');
    // Live: it showed the job running before it showed it completed.
    expect(lines[0]).toMatch(/ running /);
    expect(lines.at(-1)).toMatch(/ completed 100\.0% 40\/40 /);

    const total = 2 + items * 2 + 1;
    await until(
      () => tail.output.stdout.trim().split('\n').filter(Boolean).length >= total,
      'the tail to print every event',
    );
    tail.child.kill('SIGINT');
    expect(await tail.exit).toBe(0);
    const printed = tail.output.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { version: number; cursor: string; type: string });
    expect(printed.map((event) => event.version)).toEqual(
      Array.from({ length: total }, (_, index) => index + 1),
    );
    expect(printed.at(-1)!.type).toBe('job.completed');
    expect(printed.every((event) => /^\d+:\d+$/.test(event.cursor))).toBe(true);
  });
});
