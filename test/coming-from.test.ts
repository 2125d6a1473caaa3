import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { createServer } from '../src/server/server.ts';
import { cliEnv, headwayBin } from './cli-runner.ts';
import { storesUnderTest } from './stores.ts';

/**
 * docs/coming-from.md, run for real. Its examples are fenced blocks tagged
 * `<lang> example=<name>`; each `ts` one is a module that exports one async function, and the
 * block tagged `json result=<name>` is what that function returns. The suite writes
 * the modules to a scratch folder inside the repository (so `headway` and `ws` resolve as
 * they do for a user of the package), type-checks them with the project's settings, imports
 * them, runs each against a real ledger or server and compares its answer with the page's.
 */

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const guidePath = join(repoRoot, 'docs', 'coming-from.md');

/** Every example the page must hold; a new one needs its run below. */
const expectedExamples = [
  'operation-tracker',
  'crawler-serve',
  'crawler-reports',
  'staged-indexing',
  'resume',
  'item-over-http',
  'batch-failures',
];

interface Block {
  lang: string;
  code: string;
}

/** The page's fenced blocks tagged `<lang> <tag>=<name>`, by name; a name used twice fails. */
function taggedBlocks(markdown: string, tag: 'example' | 'result'): Map<string, Block> {
  const blocks = new Map<string, Block>();
  const fence = new RegExp(`^\`\`\`(\\w+) ${tag}=([\\w-]+)\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  for (const [, lang, name, code] of markdown.matchAll(fence)) {
    if (blocks.has(name!)) throw new Error(`${tag}=${name} appears twice in ${guidePath}`);
    blocks.set(name!, { lang: lang!, code: code! });
  }
  return blocks;
}

type ExampleFunction = (options: never) => Promise<unknown>;

describe('docs/coming-from.md', () => {
  let examples: Map<string, Block>;
  let results: Map<string, Block>;
  let scratch: string;
  const modules = new Map<string, string>();

  beforeAll(async () => {
    const guide = await readFile(guidePath, 'utf8');
    examples = taggedBlocks(guide, 'example');
    results = taggedBlocks(guide, 'result');
    await mkdir(join(repoRoot, 'tmp'), { recursive: true });
    scratch = await mkdtemp(join(repoRoot, 'tmp', 'coming-from-'));
    for (const [name, block] of examples) {
      if (block.lang !== 'ts') continue;
      const file = join(scratch, `${name}.ts`);
      await writeFile(file, block.code);
      modules.set(name, file);
    }
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** The function the example exports (exactly one), and what the page says it returns. */
  async function example<F extends ExampleFunction>(name: string) {
    const file = modules.get(name);
    if (file === undefined) throw new Error(`no \`\`\`ts example=${name} block in ${guidePath}`);
    const module = (await import(/* @vite-ignore */ pathToFileURL(file).href)) as Record<
      string,
      unknown
    >;
    const exported = Object.values(module).filter((value) => typeof value === 'function');
    expect(exported, `${name} exports one function`).toHaveLength(1);
    const result = results.get(name);
    if (result === undefined) throw new Error(`no \`\`\`json result=${name} block in ${guidePath}`);
    return { run: exported[0] as F, claimed: JSON.parse(result.code) as unknown };
  }

  // Type-checking loads the whole library, and serving spawns a process: slow on a busy machine.
  const slow = { timeout: 180_000 };

  it('holds every example this suite runs, each TypeScript one followed by its result', () => {
    expect([...examples.keys()].sort()).toEqual([...expectedExamples].sort());
    for (const [name, block] of examples) {
      if (block.lang === 'ts') expect(results.has(name), `result=${name}`).toBe(true);
    }
    expect([...results.keys()].every((name) => examples.get(name)?.lang === 'ts')).toBe(true);
  });

  it('type-checks every example with the project’s compiler settings', slow, () => {
    const configFile = join(repoRoot, 'tsconfig.json');
    const config = ts.readConfigFile(configFile, (path) => ts.sys.readFile(path));
    const { options } = ts.parseJsonConfigFileContent(
      config.config,
      ts.sys,
      repoRoot,
      undefined,
      configFile,
    );
    const program = ts.createProgram([...modules.values()], { ...options, noEmit: true });
    const problems = [...modules.values()].flatMap((file) => {
      const source = program.getSourceFile(file)!;
      return [
        ...program.getSyntacticDiagnostics(source),
        ...program.getSemanticDiagnostics(source),
      ].map((diagnostic) => {
        const at = diagnostic.file?.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
        const where = at ? `${diagnostic.file!.fileName}:${at.line + 1}:${at.character + 1}` : '';
        return `${where} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
      });
    });
    expect(problems).toEqual([]);
  });

  describe('against a server on the embedded store', () => {
    let ledger: Ledger;
    let baseUrl: string;
    let close: () => Promise<void>;

    beforeAll(async () => {
      ledger = await openLedger({ dataDir: 'memory://' });
      ({ baseUrl, close } = await serve(ledger));
    });
    afterAll(async () => {
      await close?.();
      await ledger?.close();
    });

    it('1. an in-memory operation tracker: jobs, progress reports, ?operationId, WebSocket', async () => {
      const { run, claimed } =
        await example<(options: { baseUrl: string }) => Promise<unknown>>('operation-tracker');
      expect(await run({ baseUrl })).toEqual(claimed);
      const jobs = await ledger.jobs({ project: 'billing' });
      const parent = jobs.find((job) => job.progress.parentJobId === null)!;
      expect((await ledger.status(parent.jobId))?.children?.count).toBe(1);
    });

    it('5. a JSON-file batch tracker: failures classified from their text, grouped, exported, retried', async () => {
      const { run, claimed } =
        await example<(options: { baseUrl: string }) => Promise<unknown>>('batch-failures');
      expect(await run({ baseUrl })).toEqual(claimed);
      const [job] = await ledger.jobs({ project: 'graph' });
      expect(job?.progress.counts).toMatchObject({ completed: 4, failed: 1 });
    });
  });

  it(
    '2. a crawler: absolute figures and delta counts, through `headway serve` with tokens',
    slow,
    async () => {
      const serveBlock = examples.get('crawler-serve')!;
      expect(serveBlock.code).toContain('npx headway serve');
      const tokensText = /HEADWAY_TOKENS='([^']+)'/.exec(serveBlock.code)?.[1];
      expect(tokensText).toBeDefined();
      const tokens = JSON.parse(tokensText!) as Record<string, string[]>;
      const tokenWith = (scope: string) =>
        Object.keys(tokens).find((token) => tokens[token]!.join() === scope)!;

      const dataDir = await mkdtemp(join(tmpdir(), 'headway-coming-from-'));
      try {
        const server = await startServe(dataDir, tokensText!);
        try {
          const { run, claimed } =
            await example<
              (options: {
                baseUrl: string;
                crawlerToken: string;
                readerToken: string;
              }) => Promise<unknown>
            >('crawler-reports');
          const result = await run({
            baseUrl: server.baseUrl,
            crawlerToken: tokenWith('append'),
            readerToken: tokenWith('read'),
          });
          expect(result).toEqual(claimed);
          // The report sent twice was stored once: the start and two reports.
          const timeline = await fetch(`${server.baseUrl}/v1/jobs/docs-crawl/timeline`, {
            headers: { authorization: `Bearer ${tokenWith('read')}` },
          });
          const { events } = (await timeline.json()) as { events: { type: string }[] };
          expect(events.map((event) => event.type)).toEqual([
            'job.started',
            'progress.reported',
            'progress.reported',
          ]);
        } finally {
          await server.stop();
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  );

  for (const store of storesUnderTest()) {
    describe.skipIf(!store.available)(`on ${store.name}`, () => {
      let ledger: Ledger;
      let baseUrl: string;
      let close: () => Promise<void>;

      beforeAll(async () => {
        ledger = await store.open();
        ({ baseUrl, close } = await serve(ledger));
      });
      afterAll(async () => {
        await close?.();
        await ledger?.close();
        await store.cleanup();
      });

      it('3. a staged indexing job: stages and weights, per-stage figures, logs, stage metrics', async () => {
        const { run, claimed } =
          await example<(options: { baseUrl: string }) => Promise<unknown>>('staged-indexing');
        expect(await run({ baseUrl })).toEqual(claimed);
        const [job] = await ledger.jobs({ kind: 'index' });
        expect(job?.progress).toMatchObject({ status: 'completed', percent: 100 });
        expect(job?.eta.stages.map((stage) => stage.basis)).toEqual(['done', 'done', 'done']);
        const logs = await ledger.timeline({ jobId: job!.jobId, types: ['log.written'] });
        expect(logs.events).toHaveLength(2);
      });
    });
  }

  it(
    '4. a SQLite per-item tracker: the embedded store, isProcessed, checkpoint, resume after a crash',
    slow,
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'headway-coming-from-'));
      try {
        const { run, claimed } =
          await example<
            (options: {
              dataDir: string;
              pages: string[];
              importPage: (page: string) => Promise<void>;
            }) => Promise<unknown>
          >('resume');
        const pages = ['page-1', 'page-2', 'page-3', 'page-4', 'page-5'];
        const worked: string[] = [];
        // The first run dies while importing page-3.
        await expect(
          run({
            dataDir,
            pages,
            importPage: (page) => {
              worked.push(page);
              return page === 'page-3'
                ? Promise.reject(new Error('worker killed'))
                : Promise.resolve();
            },
          }),
        ).rejects.toThrow('worker killed');
        expect(worked).toEqual(['page-1', 'page-2', 'page-3']);

        const second = await run({
          dataDir,
          pages,
          importPage: (page) => {
            worked.push(page);
            return Promise.resolve();
          },
        });
        expect(second).toEqual(claimed);
        // No page done in the first run was imported again.
        expect(worked).toEqual(['page-1', 'page-2', 'page-3', 'page-3', 'page-4', 'page-5']);

        // The same folder, served: the item over HTTP.
        const ledger = await openLedger({ dataDir });
        try {
          const { baseUrl, close } = await serve(ledger);
          try {
            const http =
              await example<(options: { baseUrl: string }) => Promise<unknown>>('item-over-http');
            expect(await http.run({ baseUrl })).toEqual(http.claimed);
          } finally {
            await close();
          }
          expect((await ledger.status('catalogue-import'))?.progress).toMatchObject({
            status: 'completed',
            counts: { planned: 5, completed: 5 },
          });
        } finally {
          await ledger.close();
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  );
});

/** A server over the ledger on a free port of 127.0.0.1. */
async function serve(ledger: Ledger): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const server = await createServer({ ledger });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const { port } = server.server.address() as AddressInfo;
  return { baseUrl: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** `headway serve` on a free port with these tokens, as the guide runs it. */
async function startServe(
  dataDir: string,
  tokens: string,
): Promise<{ baseUrl: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    [headwayBin, '--data-dir', dataDir, 'serve', '--port', '0'],
    { env: { ...cliEnv(), HEADWAY_TOKENS: tokens } },
  );
  const exited = once(child, 'exit');
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const listening = / on (http:\/\/127\.0\.0\.1:\d+) /;
  const deadline = Date.now() + 60_000;
  while (!listening.test(stdout)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`headway serve did not start: ${stdout}${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    baseUrl: listening.exec(stdout)![1]!,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
