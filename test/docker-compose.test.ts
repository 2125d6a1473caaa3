import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseTokens } from '../src/server/auth.ts';

/** The repository root, with no trailing slash. */
const root = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const run = promisify(execFile);

interface ComposeService {
  build?: { context: string; dockerfile?: string };
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { disable?: boolean; test?: string[] };
  image?: string;
}

/**
 * The compose file as the compose client resolves it (`docker compose config`, or the
 * standalone `docker-compose` of Debian's package, which prints YAML), or why neither is here.
 */
async function composeConfig(): Promise<{ services: Record<string, ComposeService> } | string> {
  try {
    await run('docker', ['compose', 'version'], { timeout: 20_000 });
    const { stdout } = await run('docker', ['compose', 'config', '--format', 'json'], {
      cwd: root,
      timeout: 60_000,
    });
    return JSON.parse(stdout) as { services: Record<string, ComposeService> };
  } catch (plugin) {
    try {
      const { stdout } = await run('docker-compose', ['config'], { cwd: root, timeout: 60_000 });
      return parse(stdout) as { services: Record<string, ComposeService> };
    } catch (standalone) {
      return [plugin, standalone]
        .map((error) => String((error as Error).message).split('\n')[0]!)
        .join('; ');
    }
  }
}

const config = await composeConfig();
if (typeof config === 'string') {
  // `.ci/run` installs Debian's docker-compose, so under CI this fails rather than skips.
  if (process.env.CI === 'true') throw new Error(`no compose client to check the file: ${config}`);
  console.warn(`\n*** SKIPPING the docker compose checks: no compose client (${config}).\n`);
}

/** The Dockerfile's last stage: what the image runs. */
async function finalStage(): Promise<string[]> {
  const text = await readFile(`${root}/Dockerfile`, 'utf8');
  // Continuation lines joined, comments dropped: one instruction per line.
  const lines = text
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
  const from = lines.findLastIndex((line) => /^FROM\s/i.test(line));
  return lines.slice(from);
}

const instruction = (stage: string[], name: string) =>
  stage.filter((line) => line.toUpperCase().startsWith(`${name} `));

describe('the Dockerfile', () => {
  it('runs the package bin as a user other than root, serving on all interfaces on 4680', async () => {
    const stage = await finalStage();
    const users = instruction(stage, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(instruction(stage, 'EXPOSE')).toEqual(['EXPOSE 4680']);

    const exec = (name: string) =>
      JSON.parse(instruction(stage, name)[0]!.slice(name.length)) as string[];
    const bin = (
      JSON.parse(await readFile(`${root}/package.json`, 'utf8')) as {
        bin: { headway: string };
      }
    ).bin.headway;
    expect(exec('ENTRYPOINT')).toEqual(['node', bin.replace(/^\.\//, '')]);
    expect(exec('CMD')).toEqual(['serve', '--host', '0.0.0.0', '--port', '4680']);
  });

  it('checks the health endpoint on that port with what the slim image has (node, no curl)', async () => {
    const checks = instruction(await finalStage(), 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatch(
      /CMD \["node", "-e", ".*fetch\('http:\/\/127\.0\.0\.1:4680\/health'\)/,
    );
    const routes = await readFile(`${root}/src/server/routes/health.ts`, 'utf8');
    expect(routes).toContain("'/health'");
  });
});

describe.skipIf(typeof config === 'string')('docker compose config', () => {
  const services = typeof config === 'string' ? {} : config.services;

  it('has the postgres service and a headway service built from the Dockerfile', () => {
    expect(Object.keys(services).sort()).toEqual(['headway', 'postgres']);
    const headway = services.headway!;
    expect(headway.build?.context.replace(/\/$/, '')).toBe(root);
    expect(headway.build?.dockerfile ?? 'Dockerfile').toBe('Dockerfile');
    // The image's own HEALTHCHECK is in force: compose neither replaces nor disables it.
    expect(headway.healthcheck).toBeUndefined();
  });

  it('starts headway once postgres is healthy, pointed at it, with valid tokens', () => {
    const { headway, postgres } = services;
    expect(postgres!.healthcheck?.test?.join(' ')).toContain('pg_isready');
    expect(headway!.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(new URL(headway!.environment!.DATABASE_URL!).hostname).toBe('postgres');
    expect(parseTokens(headway!.environment!.HEADWAY_TOKENS!).size).toBeGreaterThan(0);
  });
});
