import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClassificationRule } from '../projections/failure-classification.ts';
import type { EventInput } from '../schema/events.ts';
import { failureGroups, jobFailures, retryCandidates } from '../projections/job-failures.ts';
import type { FailureGroup, FailureReport } from '../projections/job-failures.ts';
import { InvalidInputError } from '../src/errors.ts';
import {
  loadFailureRules,
  parseFailureRules,
  readFailureRules,
} from '../src/append/failure-rules.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { createServer } from '../src/server/server.ts';
import { cliEnv, headwayBin } from './cli-runner.ts';
import { failureMessages } from './fixtures/failure-messages.ts';
import type { Expected } from './fixtures/failure-messages.ts';
import { storesUnderTest } from './stores.ts';

const quotaRule: ClassificationRule = {
  match: { messagePattern: 'quota exceeded' },
  category: 'quota',
  retryable: true,
};

const started = {
  type: 'job.started',
  data: { name: 'crawl', kind: 'crawl', project: 'web' },
} as const;

/** The message a rules list is refused with. */
function refusal(input: unknown): string {
  try {
    parseFailureRules(input);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInputError);
    return (error as Error).message;
  }
  throw new Error('expected the rules to be refused');
}

describe('failure rules: the loader', () => {
  it('returns valid rules without fields left undefined', () => {
    expect(
      parseFailureRules([
        quotaRule,
        { match: { code: 'EQUOTA', status: undefined }, category: 'quota' },
        { match: { statusRange: [500, 503], name: 'HttpError' }, category: 'upstream' },
      ]),
    ).toEqual([
      quotaRule,
      { match: { code: 'EQUOTA' }, category: 'quota' },
      { match: { statusRange: [500, 503], name: 'HttpError' }, category: 'upstream' },
    ]);
    expect(parseFailureRules([])).toEqual([]);
  });

  it('names the rule index and field, what was expected and what was received', () => {
    const rule = (match: unknown, rest: object = {}) => [
      quotaRule,
      quotaRule,
      quotaRule,
      { match, category: 'x', ...rest },
    ];
    expect(refusal(rule({ messagePattern: '([' }))).toMatchInlineSnapshot(
      `"rules[3].match.messagePattern: expected a valid regular expression, received "([" (unterminated character class)"`,
    );
    expect(refusal(rule({ messagePattern: 'a'.repeat(1_001) }))).toMatchInlineSnapshot(
      `"rules[3].match.messagePattern: expected a regular expression of 1 to 1000 characters, received "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" (1001 characters)"`,
    );
    expect(refusal(rule({}))).toMatchInlineSnapshot(
      `"rules[3].match: expected at least one of code, name, messagePattern, status, statusRange, received none of them"`,
    );
    expect(refusal(rule({ code: 'E1', colour: 'red' }))).toMatchInlineSnapshot(
      `"rules[3].match: expected only code, name, messagePattern, status, statusRange, received "colour""`,
    );
    expect(refusal(rule({ statusRange: [599, 500] }))).toMatchInlineSnapshot(
      `"rules[3].match.statusRange: expected an inclusive range [low, high] of HTTP statuses, such as [500, 599], low <= high, received [599,500]"`,
    );
    expect(refusal(rule({ statusRange: [500, 600] }))).toMatchInlineSnapshot(
      `"rules[3].match.statusRange[1]: expected an HTTP status, a whole number from 100 to 599, received 600"`,
    );
    expect(refusal(rule({ status: '503' }))).toMatchInlineSnapshot(
      `"rules[3].match.status: expected an HTTP status, a whole number from 100 to 599, received "503""`,
    );
    expect(refusal(rule({ code: 'E1' }, { category: '' }))).toMatchInlineSnapshot(
      `"rules[3].category: expected a name of 1 to 200 characters, received """`,
    );
    expect(refusal(rule({ code: 'E1' }, { category: 'x'.repeat(201) }))).toMatchInlineSnapshot(
      `"rules[3].category: expected a name of 1 to 200 characters, received "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…" (201 characters)"`,
    );
    expect(refusal(rule({ code: 'E1' }, { category: 'a\u0000b' }))).toMatchInlineSnapshot(
      `"rules[3].category: expected a name of 1 to 200 characters without NUL or lone surrogates, received "a\\u0000b""`,
    );
    expect(refusal(rule({ code: 'E1' }, { retryable: 'yes' }))).toMatchInlineSnapshot(
      `"rules[3].retryable: expected true or false, received "yes""`,
    );
    expect(refusal(rule({ code: 'E1' }, { when: 'always' }))).toMatchInlineSnapshot(
      `"rules[3]: expected only match, category, retryable, received "when""`,
    );
    expect(refusal([{ match: { code: 'E1' } }])).toMatchInlineSnapshot(
      `"rules[0].category: expected a name of 1 to 200 characters, received nothing"`,
    );
    expect(refusal({ rules: [] })).toMatchInlineSnapshot(
      `"rules: expected an array of at most 500 rules, received an object"`,
    );
    expect(refusal(Array.from({ length: 501 }, () => quotaRule))).toMatchInlineSnapshot(
      `"rules: expected an array of at most 500 rules, received 501 rules"`,
    );
  });

  it('names the file in a file’s errors, and refuses what is no JSON', async () => {
    expect(() =>
      loadFailureRules('[{"match": {"status": 99}, "category": "x"}]', 'r.json'),
    ).toThrow(
      'r.json: rules[0].match.status: expected an HTTP status, a whole number from 100 to 599, received 99',
    );
    expect(() => loadFailureRules('[{', 'r.json')).toThrow(
      /^r\.json: expected JSON \(an array of rules\), received text that is not JSON/,
    );
    await expect(readFailureRules('/nonexistent/rules.json')).rejects.toThrow(
      '/nonexistent/rules.json: expected a readable JSON file of failure rules, received ENOENT',
    );
  });

  it('is checked by openLedger before it opens a store', async () => {
    await expect(
      openLedger({
        dataDir: 'memory://',
        failureRules: [{ match: { messagePattern: '([' }, category: 'x' }],
      }),
    ).rejects.toThrow(
      'failureRules[0].match.messagePattern: expected a valid regular expression, received "(["',
    );
  });
});

/** A listening server over a ledger, and a JSON client of it. */
async function serve(ledger: Ledger) {
  const server: FastifyInstance = await createServer({ ledger });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };
  return { server, call };
}

/** Each item's category and retryability, as the failures export over HTTP reports them. */
function byItem(report: FailureReport): Map<string, Expected> {
  const candidates = new Set(report.retryCandidates.map((candidate) => candidate.itemId));
  const items = new Map<string, Expected>();
  for (const group of report.groups) {
    for (const itemId of group.itemIds) {
      items.set(itemId, [group.category, candidates.has(itemId)]);
      // Within a group every failure classifies alike: all retryable or none.
      expect([0, group.count]).toContain(group.retryable);
      expect(group.retryable > 0).toBe(candidates.has(itemId));
    }
  }
  return items;
}

const stores = storesUnderTest();
afterAll(async () => {
  for (const store of stores) await store.cleanup();
});

for (const store of stores) {
  describe.skipIf(!store.available)(`failure rules: ${store.name}`, () => {
    let folder: string;
    beforeAll(async () => {
      folder = await mkdtemp(join(tmpdir(), 'headway-rules-'));
    });
    afterAll(async () => {
      await rm(folder, { recursive: true, force: true });
    });

    // Without rules the read-time defaults classify; with rules (none of them matching
    // here) the same defaults are recorded at append. Either way: the table's answers.
    for (const failureRules of [undefined, [quotaRule]]) {
      it(`classifies every message of the table sent over HTTP as the library does (${failureRules ? 'recorded' : 'read-time'})`, async () => {
        const ledger = await store.open(failureRules ? { failureRules } : {});
        const { server, call } = await serve(ledger);
        try {
          const jobId = 'table';
          expect((await call('POST', '/v1/jobs', { jobId, ...started.data })).status).toBe(201);
          const events = failureMessages.map(([, message], index) => ({
            type: 'item.failed',
            data: { itemId: `item-${index}`, error: { message } },
          }));
          expect((await call('POST', `/v1/jobs/${jobId}/events`, { events })).status).toBe(200);

          const failures = await call('GET', `/v1/jobs/${jobId}/failures?format=export`);
          expect(failures.status).toBe(200);
          const items = byItem(failures.json as unknown as FailureReport);
          failureMessages.forEach(([, message, expected], index) => {
            expect({ message, result: items.get(`item-${index}`) }).toEqual({
              message,
              result: expected,
            });
          });

          // Recorded: the stored error carries the answer; else it is stored as sent.
          const stored = await ledger.readStream(jobId, { fromVersion: 2 });
          stored.forEach((event, index) => {
            const [, message, [category, retryable]] = failureMessages[index]!;
            expect(event.data).toEqual({
              itemId: `item-${index}`,
              error: failureRules ? { message, category, retryable } : { message },
            });
          });
        } finally {
          await server.close();
          await ledger.close();
        }
      });
    }

    it('records the rule: the same store opened without rules, or with others, folds alike', async () => {
      const location =
        store.name === 'pglite'
          ? { dataDir: join(folder, 'recorded') }
          : { schema: `hw_test_rules_${Date.now().toString(36)}` };
      const jobId = 'recorded';
      const withRules = await store.open({ ...location, failureRules: [quotaRule] });
      try {
        await withRules.append(jobId, [started], { expectedVersion: 'no_stream' });
        await withRules.append(jobId, [
          { type: 'item.failed', data: { itemId: 'a', error: { message: 'Disk quota exceeded' } } },
        ]);
        await withRules.appendMany([
          {
            streamId: jobId,
            events: [
              {
                type: 'item.failed',
                data: { itemId: 'b', error: { message: 'API quota exceeded', code: 'E429' } },
              },
              { type: 'item.failed', data: { itemId: 'c', error: { message: 'read ECONNRESET' } } },
            ],
          },
        ]);
        // The recording handle of a ledger with rules applies them too.
        await withRules.job(jobId).itemFailed('d', new Error('monthly quota exceeded'));
        await withRules.append(jobId, [
          { type: 'job.failed', data: { error: { message: 'quota exceeded, giving up' } } },
        ]);
      } finally {
        await withRules.close();
      }

      const live = {
        a: ['quota', true],
        b: ['quota', true],
        c: ['network', true],
        d: ['quota', true],
      };
      const otherRules: ClassificationRule[] = [
        { match: { messagePattern: 'quota' }, category: 'billing', retryable: false },
      ];
      for (const options of [{}, { failureRules: otherRules }]) {
        const reopened = await store.open({ ...location, ...options });
        try {
          const state = await reopened.project(jobId, jobFailures);
          const items: Record<string, [string, boolean]> = {};
          for (const group of failureGroups(state)) {
            for (const itemId of group.itemIds) {
              items[itemId] = [group.category, group.retryable === group.count];
            }
          }
          expect(items).toEqual(live);
          expect(state.byCategory).toEqual({ quota: 4, network: 1 });
          expect(retryCandidates(state).map((candidate) => candidate.itemId)).toEqual([
            'a',
            'b',
            'c',
            'd',
          ]);
          // Without the rule, the defaults would read 'Disk quota exceeded' as output.
          const [, first] = await reopened.readStream(jobId, { limit: 2 });
          expect(first!.data).toEqual({
            itemId: 'a',
            error: { message: 'Disk quota exceeded', category: 'quota', retryable: true },
          });
        } finally {
          await reopened.close();
        }
      }
    });

    it('keeps an explicit category or retryable, and every other event as sent', async () => {
      const ledger = await store.open({ failureRules: [quotaRule] });
      try {
        const jobId = 'explicit';
        const sent: EventInput[] = [
          started,
          { type: 'item.completed', data: { itemId: 'z', output: { note: 'quota exceeded' } } },
          { type: 'log.written', data: { level: 'error', message: 'quota exceeded' } },
          {
            type: 'item.failed',
            data: { itemId: 'a', error: { message: 'quota exceeded', category: 'billing' } },
          },
          {
            type: 'item.failed',
            data: { itemId: 'b', error: { message: 'quota exceeded', retryable: false } },
          },
          // A producer's retryable is kept as sent; not_applicable is never retried anyway.
          {
            type: 'item.failed',
            data: { itemId: 'c', error: { message: 'HTTP 404 Not Found', retryable: true } },
          },
        ];
        await ledger.append(jobId, sent);
        const stored = await ledger.readStream(jobId);
        expect(stored.map((event) => event.data)).toEqual([
          ...sent.slice(0, 4).map((event) => event.data),
          {
            itemId: 'b',
            error: { message: 'quota exceeded', category: 'quota', retryable: false },
          },
          {
            itemId: 'c',
            error: { message: 'HTTP 404 Not Found', category: 'not_applicable', retryable: true },
          },
        ]);
        const state = await ledger.project(jobId, jobFailures);
        const categories = Object.fromEntries(
          failureGroups(state).flatMap((group: FailureGroup) =>
            group.itemIds.map((itemId) => [itemId, [group.category, group.retryable]]),
          ),
        );
        expect(categories).toEqual({
          a: ['billing', 0],
          b: ['quota', 0],
          c: ['not_applicable', 0],
        });
      } finally {
        await ledger.close();
      }
    });

    it('recognises a retried failure as the same event, through the library and over HTTP', async () => {
      const ledger = await store.open({ failureRules: [quotaRule] });
      const { server, call } = await serve(ledger);
      try {
        const jobId = 'retried';
        await ledger.append(jobId, [started]);
        const failure: EventInput = {
          eventId: '6f1c0e52-8a43-4c1e-9d0a-3b2f4a5c6d7e',
          type: 'item.failed',
          data: { itemId: 'a', error: { message: 'quota exceeded' } },
        };
        const first = await ledger.append(jobId, [failure]);
        const again = await ledger.append(jobId, [failure]);
        expect(again).toEqual(first);

        const overHttp: EventInput = {
          eventId: '0b8d7c6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e',
          type: 'job.failed',
          data: { error: { message: 'socket hang up' } },
        };
        const sent = await call('POST', `/v1/jobs/${jobId}/events`, { events: [overHttp] });
        const resent = await call('POST', `/v1/jobs/${jobId}/events`, { events: [overHttp] });
        expect(sent.status).toBe(200);
        expect(resent).toEqual(sent);
        expect(await ledger.streamVersion(jobId)).toBe(3);

        // The same id with other content is still a conflict.
        await expect(
          ledger.append(jobId, [
            { ...failure, data: { itemId: 'a', error: { message: 'quota exceeded!' } } },
          ]),
        ).rejects.toMatchObject({ code: 'idempotency_conflict' });
      } finally {
        await server.close();
        await ledger.close();
      }
    });
  });
}

/** Runs `headway <args> --port 0` (a `serve`) as a child process. */
function startServe(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [headwayBin, ...args, '--port', '0'], {
    env: { ...cliEnv(), ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    /** The served address, once the banner's last line is out. */
    async address(): Promise<string> {
      // A busy machine may take a while to start tsx and the embedded store.
      const deadline = Date.now() + 60_000;
      let done = false;
      void exited.then(() => (done = true));
      while (!stdout.includes('No HEADWAY_TOKENS') && !done && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const found = /on (http:\/\/\S+) /.exec(stdout);
      if (!found) throw new Error(`serve printed no address: ${stdout}${stderr}`);
      return found[1]!;
    },
  };
}

describe('headway serve --failure-rules', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'headway-serve-rules-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('applies a rule over a default and records it in the stored event', async () => {
    const rulesFile = join(folder, 'rules.json');
    await writeFile(rulesFile, JSON.stringify([quotaRule]));
    const dataDir = join(folder, 'store');
    const serving = startServe(['--data-dir', dataDir, 'serve', '--failure-rules', rulesFile]);
    const base = await serving.address();
    expect(serving.output().stdout).toContain(`Failure rules: 1 from ${rulesFile}`);
    const post = (path: string, body: unknown) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const jobId = 'quota-job';
    expect((await post('/v1/jobs', { jobId, ...started.data })).status).toBe(201);
    const appended = await post(`/v1/jobs/${jobId}/events`, {
      events: [
        // The defaults read this as output, never retried.
        { type: 'item.failed', data: { itemId: 'a', error: { message: 'Disk quota exceeded' } } },
        { type: 'item.failed', data: { itemId: 'b', error: { message: 'read ECONNRESET' } } },
      ],
    });
    expect(appended.status).toBe(200);
    const timeline = (await (
      await fetch(`${base}/v1/jobs/${jobId}/timeline?type=item.failed`)
    ).json()) as { events: { data: unknown }[] };
    expect(timeline.events.map((event) => event.data)).toEqual([
      {
        itemId: 'a',
        error: { message: 'Disk quota exceeded', category: 'quota', retryable: true },
      },
      { itemId: 'b', error: { message: 'read ECONNRESET', category: 'network', retryable: true } },
    ]);
    serving.child.kill('SIGTERM');
    expect(await serving.exited).toBe(0);

    // Opened later without the rules file, the store still reads the rule's answer.
    const ledger = await openLedger({ dataDir });
    try {
      const state = await ledger.project(jobId, jobFailures);
      expect(state.byCategory).toEqual({ quota: 1, network: 1 });
    } finally {
      await ledger.close();
    }
  }, 120_000);

  it('stops with a non-zero exit naming the file and the rule, serving nothing', async () => {
    const rulesFile = join(folder, 'bad.json');
    await writeFile(
      rulesFile,
      JSON.stringify([quotaRule, { match: { messagePattern: '([' }, category: 'x' }]),
    );
    for (const [args, env] of [
      [['--failure-rules', rulesFile], {}],
      [[], { HEADWAY_FAILURE_RULES: rulesFile }],
    ] as const) {
      const serving = startServe(['--data-dir', join(folder, 'bad-store'), 'serve', ...args], env);
      expect(await serving.exited).not.toBe(0);
      const { stdout, stderr } = serving.output();
      expect(stderr).toContain(
        `${rulesFile}: rules[1].match.messagePattern: expected a valid regular expression, received "(["`,
      );
      expect(stdout).not.toContain('Headway serving');
    }
    const missing = startServe([
      '--data-dir',
      join(folder, 'bad-store'),
      'serve',
      '--failure-rules',
      join(folder, 'missing.json'),
    ]);
    expect(await missing.exited).not.toBe(0);
    expect(missing.output().stderr).toContain(
      `${join(folder, 'missing.json')}: expected a readable JSON file of failure rules, received ENOENT`,
    );
  }, 120_000);
});
