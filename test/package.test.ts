import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The package as another service gets it: `npm pack`, installed into a fresh project with
// no tsx and no TypeScript loader, used from plain ESM, from TypeScript and through `npx`.
// It runs on this machine's Node and on every binary in HEADWAY_TEST_NODES (paths, split by
// ':'), which `.ci/run` fills with Node 22 and 24 from the npm registry's `node` package.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  engines: { node: string };
};
const requiredLines = [22, 24];
const extraNodes = (process.env.HEADWAY_TEST_NODES ?? '').split(':').filter(Boolean);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (bounded), with `node` on PATH being the binary under test. */
function run(
  node: string,
  command: string,
  args: readonly string[],
  cwd: string,
  timeoutMs = 120_000,
): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}`,
  };
  // npm's own settings from this repository's `npm test` must not leak into the consumer.
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key];
  delete env.NODE_OPTIONS;
  delete env.DATABASE_URL;
  delete env.HEADWAY_DATABASE_URL;
  return new Promise((done) => {
    execFile(
      command,
      [...args],
      { cwd, env, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        done({ code, stdout, stderr });
      },
    );
  });
}

function expectSuccess(result: Run, what: string): void {
  if (result.code !== 0) {
    throw new Error(`${what} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  }
}

/** The version a node binary reports. */
async function versionOf(node: string): Promise<string> {
  const result = await run(node, node, ['--version'], root, 10_000);
  expectSuccess(result, `${node} --version`);
  return result.stdout.trim().replace(/^v/, '');
}

/** The lowest `line.minor.0` that `range` allows, e.g. 22.13.0 for `^22.13.0 || >=24`. */
function lowestOf(line: number, range: string): string {
  for (let minor = 0; minor < 100; minor++) {
    if (semver.satisfies(`${line}.${minor}.0`, range)) return `${line}.${minor}.0`;
  }
  throw new Error(`engines '${range}' allows no Node ${line}`);
}

const nodes = [process.execPath, ...extraNodes];
const versions = new Map<string, string>();
for (const node of nodes) versions.set(node, await versionOf(node));

let folder: string;
let tarball: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'headway-package-'));
  // `npm pack` runs `prepare`, which builds dist/ from the sources under test.
  const packed = await run(
    process.execPath,
    'npm',
    ['pack', '--json', '--pack-destination', folder],
    root,
    300_000,
  );
  expectSuccess(packed, 'npm pack');
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as [
    { filename: string },
  ];
  tarball = join(folder, filename);
}, 300_000);

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true });
});

describe('the Node versions the package test runs on', () => {
  it('include every supported LTS line under CI', () => {
    const lines = [...versions.values()].map((version) => semver.major(version));
    const missing = requiredLines.filter((line) => !lines.includes(line));
    if (missing.length > 0 && process.env.CI !== 'true') {
      console.warn(
        `\n  !! The package test ran without Node ${missing.join(' and ')}: set HEADWAY_TEST_NODES (as .ci/run does).\n`,
      );
      return;
    }
    expect(missing).toEqual([]);
  });

  it('are the ones engines names: Node 22 and 24 supported, and no dependency wants more', async () => {
    for (const line of requiredLines) {
      expect(semver.satisfies(`${line}.99.0`, manifest.engines.node)).toBe(true);
    }
    expect(semver.satisfies('20.19.0', manifest.engines.node)).toBe(false);
    // The lowest version of each supported line must satisfy every locked package, dev
    // dependencies and optional ones included, or `npm install` warns (EBADENGINE) there.
    const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { engines?: { node?: string } }>;
    };
    const floors = requiredLines.map((line) => lowestOf(line, manifest.engines.node));
    const wanting = Object.entries(lock.packages).flatMap(([path, entry]) =>
      floors
        .filter((floor) => entry.engines?.node && !semver.satisfies(floor, entry.engines.node))
        .map((floor) => `${path || manifest.name} wants ${entry.engines!.node} (not ${floor})`),
    );
    expect(wanting).toEqual([]);
  });
});

describe.each(nodes.map((node) => ({ node, version: versions.get(node)! })))(
  'the packed package on Node $version',
  ({ node, version }) => {
    let project: string;
    let install: Run;
    const supported = semver.satisfies(version, manifest.engines.node);

    beforeAll(async () => {
      project = join(folder, `node-${version}`);
      await run(node, 'mkdir', ['-p', project], folder);
      await writeFile(
        join(project, 'package.json'),
        JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
      );
      install = await run(
        node,
        'npm',
        ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball],
        project,
        300_000,
      );
      expectSuccess(install, 'npm install <tarball>');
    }, 300_000);

    it('installs without tsx and, on a supported Node, without an engine warning', () => {
      expect(existsSync(join(project, 'node_modules', manifest.name, 'dist'))).toBe(true);
      expect(existsSync(join(project, 'node_modules', 'tsx'))).toBe(false);
      expect(existsSync(join(project, 'node_modules', 'typescript'))).toBe(false);
      if (supported) expect(install.stderr).not.toMatch(/EBADENGINE/);
    });

    it('is used from plain ESM: an embedded ledger, the server, the client and the dashboard', async () => {
      await copyFile(
        join(root, 'test', 'fixtures', 'package-consumer.mjs'),
        join(project, 'consumer.mjs'),
      );
      const result = await run(node, node, ['consumer.mjs'], project, 60_000);
      expectSuccess(result, 'node consumer.mjs');
      expect(JSON.parse(result.stdout)).toEqual({
        local: {
          percent: 50,
          counts: { planned: 2, pending: 0, inFlight: 0, completed: 1, failed: 1, skipped: 0 },
        },
        remote: { status: 'completed', processed: 2 },
        dashboard: { page: 200, script: 200 },
        schema: { types: 19, itemCompleted: true },
      });
    });

    it('runs `npx headway --help` and `npx headway demo`', async () => {
      const help = await run(node, 'npx', ['headway', '--help'], project, 30_000);
      expectSuccess(help, 'npx headway --help');
      expect(help.stdout).toMatch(/^Usage: headway/);
      const demo = await run(
        node,
        'npx',
        ['headway', '--data-dir', 'demo-store', 'demo', '--items', '200', '--seed', '7', '--json'],
        project,
        120_000,
      );
      expectSuccess(demo, 'npx headway demo');
      const outcome = JSON.parse(demo.stdout) as {
        summary: { progress: { status: string; total: number } };
      };
      expect(outcome.summary.progress).toMatchObject({ status: 'completed', total: 200 });
    });
  },
);

describe('a TypeScript consumer (module nodenext, strict)', () => {
  // Every entry and a few of their types, as a service would write them.
  const consumer = `
import { openLedger, type Ledger } from 'headway';
import { createClient, type HeadwayClient } from 'headway/client';
import { jobProgress, type JobProgressState } from 'headway/projections';
import { eventTypes, type EventInput, type RecordedEvent } from 'headway/schema';
import { createServer, type ServerOptions } from 'headway/server';

export async function record(dataDir: string): Promise<number> {
  const ledger: Ledger = await openLedger({ dataDir });
  const job = ledger.job();
  await job.start({ name: 'n', kind: 'k', project: 'p', total: 1 });
  const progress: JobProgressState = await ledger.project(job.jobId, jobProgress);
  const events: RecordedEvent[] = await ledger.readStream(job.jobId);
  const input: EventInput = { type: 'item.completed', data: { itemId: 'a' } };
  const options: ServerOptions = { ledger };
  const server = await createServer(options);
  const client: HeadwayClient = createClient({ url: 'http://127.0.0.1:4680' });
  await client.close();
  await server.close();
  await ledger.close();
  return progress.percent + events.length + eventTypes.length + input.type.length;
}
`;

  it('typechecks against the shipped declarations, with no error of ours', async () => {
    const project = join(folder, 'typescript-consumer');
    await run(process.execPath, 'mkdir', ['-p', project], folder);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'ts-consumer', version: '1.0.0', private: true, type: 'module' }),
    );
    await writeFile(join(project, 'consumer.ts'), consumer);
    // skipLibCheck off, so the shipped .d.ts files are checked too, not only used.
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2023',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        include: ['consumer.ts'],
      }),
    );
    const install = await run(
      process.execPath,
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, '@types/node@22'],
      project,
      300_000,
    );
    expectSuccess(install, 'npm install <tarball> @types/node');
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const checked = await run(process.execPath, process.execPath, [tsc, '-p', '.'], project);
    const errors = checked.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
    // PGlite's own declarations name Emscripten's globals without depending on their types;
    // that is theirs to fix, and `skipLibCheck` (on by default in new projects) hides it.
    const ours = errors.filter((line) => !line.startsWith('node_modules/@electric-sql/pglite/'));
    expect(ours).toEqual([]);
  }, 300_000);
});
