import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../src/open-ledger.ts';
import { hasChromium, launchChromium } from './chromium.ts';
import { cliEnv, headwayBin, runHeadway } from './cli-runner.ts';

describe('headway serve', () => {
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-serve-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('refuses to listen beyond this machine without tokens, and rejects malformed tokens', async () => {
    const open = await runHeadway(['--data-dir', join(folder, 'a'), 'serve', '--host', '0.0.0.0']);
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(
      /--host: expected a loopback address .* while HEADWAY_TOKENS is unset, received '0\.0\.0\.0'/,
    );
    const badTokens = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [headwayBin, '--data-dir', join(folder, 'a'), 'serve'],
        {
          env: { ...cliEnv(), HEADWAY_TOKENS: '{"short": ["read"]}' },
        },
      );
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      child.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(badTokens.code).toBe(1);
    expect(badTokens.stderr).toMatch(/HEADWAY_TOKENS: expected a JSON object from tokens of 16/);
  });

  it('npm start: serves the demo job, which the API reports as it runs', async () => {
    const child = spawn(
      process.execPath,
      [
        headwayBin,
        '--data-dir',
        join(folder, 'c'),
        'serve',
        '--demo',
        '--demo-items',
        '300',
        '--port',
        '0',
      ],
      { env: cliEnv() },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const announced =
      /Demo job (\S+): ((http:\/\/\S+)\/jobs\/\S+) \(API: \S+\), or: npx headway watch/;
    // The served demo runs on the wall clock: 300 documents take about 20 s.
    const deadline = Date.now() + 90_000;
    while (!announced.test(stdout) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const [, jobId, pageUrl, base] = announced.exec(stdout)!;
    // Announced as it starts: the API reports it within moments.
    let response = await fetch(`${base}/v1/jobs/${jobId}`);
    while (response.status === 404 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      response = await fetch(`${base}/v1/jobs/${jobId}`);
    }
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      jobId,
      progress: { project: 'demo', name: 'demo crawl', total: 300 },
    });
    // The printed address shows the job live in a browser, through to its end.
    if (!hasChromium())
      console.warn('\n*** SKIPPING the browser check of npm start: no Chromium.\n');
    else {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        await page.goto(pageUrl!);
        const shown = () => page.locator('#overall .percent').textContent({ timeout: 10_000 });
        await expect.poll(() => page.locator('#job-status').textContent()).toBe('running');
        const first = await shown();
        await expect.poll(shown, { timeout: 20_000 }).not.toBe(first);
        await expect
          .poll(() => page.locator('#job-status').textContent(), { timeout: 60_000 })
          .toBe('completed');
        expect(await shown()).toBe('100.0% (300/300)');
      } finally {
        await browser.close();
      }
    }
    while (!stdout.includes(`Demo job ${jobId} done`) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const done = (await (await fetch(`${base}/v1/jobs/${jobId}`)).json()) as {
      progress: { status: string; processed: number };
    };
    expect(done.progress).toMatchObject({ status: 'completed', processed: 300 });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);

  it('npm start: a SIGTERM mid-demo stops the server without running the demo to its end', async () => {
    const store = join(folder, 'd');
    const child = spawn(
      process.execPath,
      [headwayBin, '--data-dir', store, 'serve', '--demo', '--demo-items', '2000', '--port', '0'],
      { env: cliEnv() },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 60_000;
    // The first progress line: the demo is under way on the wall clock (2,000 take ~90 s).
    while (!/\[\w+\s*\] .*%/.test(stdout) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const jobId = /Demo job (\S+):/.exec(stdout)![1]!;
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('Stopping: finishing requests and writing queued appends.');
    expect(stdout).not.toContain(`Demo job ${jobId} done`);
    // Left open as a crashed worker leaves it: what was recorded is there, and resumable.
    const ledger = await openLedger({ dataDir: store });
    try {
      const view = await ledger.status(jobId);
      expect(view?.progress.status).toBe('running');
      expect(view!.progress.processed).toBeLessThan(2_000);
    } finally {
      await ledger.close();
    }
  }, 120_000);

  it('serves the embedded store, then on SIGTERM finishes, writes what it took, and exits 0', async () => {
    const store = join(folder, 'b');
    const child = spawn(
      process.execPath,
      [headwayBin, '--data-dir', store, 'serve', '--port', '0'],
      { env: cliEnv() },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 30_000;
    // The banner's lines may come in separate chunks: wait for its last one.
    while (!stdout.includes('No HEADWAY_TOKENS') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const base = /on (http:\/\/\S+) /.exec(stdout)![1]!;
    expect(stdout).toContain('No HEADWAY_TOKENS: every route is open');

    const started = await fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jobId: 'served', name: 'served', kind: 'demo', project: 'serve' }),
    });
    expect(started.status).toBe(201);
    const appends = Array.from({ length: 20 }, (_, index) =>
      fetch(`${base}/v1/jobs/served/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          events: [{ type: 'item.completed', data: { itemId: `i${index}` } }],
        }),
      }),
    );
    expect((await Promise.all(appends)).map((response) => response.status)).toEqual(
      Array(20).fill(200),
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('Stopping: finishing requests and writing queued appends.');

    const ledger = await openLedger({ dataDir: store });
    try {
      expect(await ledger.streamVersion('served')).toBe(21);
    } finally {
      await ledger.close();
    }
  });
});
