import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Metafile } from 'esbuild';
import type { FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { createServer } from '../src/server/server.ts';
import { hasChromium, launchChromium } from './chromium.ts';

// `headway/client` as a browser app gets it: bundled for the browser platform, where any
// `node:` import or database driver fails the build, then run in Chromium against a server.

const entry = new URL('../src/client/index.ts', import.meta.url).pathname;

/** The client bundled the way a web app's bundler would, minified. */
async function bundle(format: 'esm' | 'iife') {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format,
    ...(format === 'iife' ? { globalName: 'HeadwayClient' } : {}),
    target: 'es2022',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { code: result.outputFiles[0]!.text, metafile: result.metafile };
}

/** The npm packages a bundle took code from, with the bytes each put in it. */
function packagesIn(metafile: Metafile): Map<string, number> {
  const found = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, input] of Object.entries(output.inputs)) {
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1] ?? '(headway)';
      found.set(name, (found.get(name) ?? 0) + input.bytesInOutput);
    }
  }
  return found;
}

describe('headway/client bundled for browsers', () => {
  it('builds with no node: import, driver, ORM or server framework, and stays small', async () => {
    const { code, metafile } = await bundle('esm');
    const packages = packagesIn(metafile);
    expect([...packages.keys()].sort()).toEqual(['(headway)', 'eventsource-parser', 'zod']);
    const sources = Object.keys(metafile.inputs).filter((path) => !path.includes('node_modules'));
    expect(
      sources.filter((path) => /^src\/(store|server|live|persisted|queries)\//.test(path)),
    ).toEqual([]);
    // Node's globals bundle silently and fail only when the line runs in a browser.
    const nodeOnly = sources.flatMap((path) =>
      readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => !line.trim().startsWith('//') && !line.trim().startsWith('*'))
        .filter((line) =>
          /\b(Buffer|process|require)(\.\w|\()|\b(__dirname|setImmediate)\b/.test(line),
        )
        .map((line) => `${path}: ${line.trim()}`),
    );
    expect(nodeOnly).toEqual([]);
    const minified = Buffer.byteLength(code);
    const gzipped = gzipSync(code).length;
    console.log(
      `headway/client for browsers: ${(minified / 1024).toFixed(1)} KiB minified, ${(gzipped / 1024).toFixed(1)} KiB gzipped`,
    );
    // A bound on size, not a figure to match: README gives today's. Importing `z` as a named
    // export instead of `* as z` pulls every zod locale in and passes 100 KiB gzipped.
    expect(gzipped).toBeLessThan(64 * 1024);
  });
});

describe.skipIf(!hasChromium())('headway/client in headless Chromium', () => {
  let ledger: Ledger;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    ledger = await openLedger({ dataDir: 'memory://' });
    server = await createServer({ ledger });
    await server.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await ledger?.close();
  });

  it('records a job, reads its status and follows its stream from a page', async () => {
    const { code } = await bundle('iife');
    const page = await browser.newPage();
    try {
      // Same origin as the API, as a dashboard served beside it would be.
      await page.goto(`${base}/`);
      await page.addScriptTag({ content: code });
      const seen = await page.evaluate(async (origin) => {
        type Client = {
          job(): {
            jobId: string;
            start(data: object): Promise<unknown>;
            itemCompleted(id: string): Promise<unknown>;
            complete(): Promise<unknown>;
          };
          flush(): Promise<void>;
          close(): Promise<void>;
          status(jobId: string): Promise<{ progress: { status: string; processed: number } }>;
          watch(jobId: string, options: { signal: AbortSignal }): AsyncIterable<{ event: string }>;
        };
        const { createClient } = (
          globalThis as unknown as { HeadwayClient: { createClient: (o: object) => Client } }
        ).HeadwayClient;
        const client = createClient({ url: origin });
        const job = client.job(); // its id from the browser's crypto.randomUUID
        await job.start({ name: 'from a page', kind: 'web', project: 'browser', total: 2 });
        await job.itemCompleted('a');
        await job.itemCompleted('b');
        await job.complete();
        await client.flush();
        const status = await client.status(job.jobId);
        const stop = new AbortController();
        let first = '';
        for await (const message of client.watch(job.jobId, { signal: stop.signal })) {
          first = message.event;
          stop.abort();
          break;
        }
        await client.close();
        return { jobId: job.jobId, status: status.progress, first };
      }, base);
      expect(seen.jobId).toMatch(/^[0-9a-f-]{36}$/);
      expect(seen.status).toMatchObject({ status: 'completed', processed: 2 });
      expect(seen.first).toBe('snapshot');
      // And the server's own log holds what the page sent.
      const stored = await ledger.readStream(seen.jobId);
      expect(stored.map((event) => event.type)).toEqual([
        'job.started',
        'item.completed',
        'item.completed',
        'job.completed',
      ]);
    } finally {
      await page.close();
    }
  });
});
