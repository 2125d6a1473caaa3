import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient, EventsNotStoredError } from '../../src/client/index.ts';
import type { HeadwayClient } from '../../src/client/index.ts';
import type { Ledger } from '../../src/ledger.ts';
import { openLedger } from '../../src/open-ledger.ts';
import { createServer } from '../../src/server/server.ts';
import { cliEnv, headwayBin } from '../cli-runner.ts';
import { postgresAvailable, postgresUrl, storesUnderTest } from '../stores.ts';

/** Listens on a free loopback port; resolves to its base URL. */
async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

function answer(outgoing: ServerResponse, status: number, code: string, headers = {}): void {
  outgoing.writeHead(status, { 'content-type': 'application/json', ...headers });
  outgoing.end(JSON.stringify({ error: { code, message: `injected ${status} ${code}` } }));
}

/** Records `items` completed items with ids the test knows, for each job. */
async function recordItems(
  client: HeadwayClient,
  jobIds: readonly string[],
  from: number,
  to: number,
  sent: Map<string, string[]>,
): Promise<void> {
  await Promise.all(
    jobIds.map(async (jobId) => {
      const job = client.job(jobId);
      for (let index = from; index < to; index += 1) {
        const eventId = randomUUID();
        sent.get(jobId)!.push(eventId);
        await job.itemCompleted(`item-${index}`, { durationMs: 1 }, { eventId });
      }
    }),
  );
}

/** How often each event id is in the log, for the given jobs. */
async function storedCounts(ledger: Ledger, jobIds: readonly string[]) {
  const counts = new Map<string, number>();
  for (const jobId of jobIds) {
    for (const event of await ledger.readStream(jobId)) {
      counts.set(event.eventId, (counts.get(event.eventId) ?? 0) + 1);
    }
  }
  return counts;
}

describe.skipIf(!postgresAvailable)('client SDK: injected 500s (PostgreSQL)', () => {
  const store = storesUnderTest().find((candidate) => candidate.name === 'postgres')!;
  let ledger: Ledger;
  let server: FastifyInstance;
  let proxy: Server;
  let proxyUrl: string;
  const faults = { refused500: 0, storedThen500: 0, posts: 0 };

  beforeAll(async () => {
    ledger = await store.open();
    server = await createServer({ ledger });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const target = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    // Of the first 60 posts: every 3rd gets a 500 without reaching the server, every 5th
    // (not also a 3rd) reaches it, is stored, and its answer is replaced by a 500.
    proxy = createHttpServer((incoming: IncomingMessage, outgoing: ServerResponse) => {
      const post = incoming.method === 'POST' ? ++faults.posts : 0;
      const faulty = post > 0 && post <= 60;
      if (faulty && post % 3 === 0) {
        faults.refused500 += 1;
        incoming.resume();
        // One of them asks for a pause; the client honours it.
        answer(outgoing, 500, 'internal', post === 3 ? { 'retry-after': '1' } : {});
        return;
      }
      const forwarded = httpRequest(
        `${target}${incoming.url}`,
        { method: incoming.method, headers: incoming.headers },
        (reply) => {
          if (faulty && post % 5 === 0 && reply.statusCode === 200) {
            faults.storedThen500 += 1;
            reply.resume();
            reply.on('end', () => answer(outgoing, 500, 'internal'));
            return;
          }
          outgoing.writeHead(reply.statusCode ?? 502, reply.headers);
          reply.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.socket?.destroy());
      incoming.pipe(forwarded);
    });
    proxyUrl = await listen(proxy);
  });
  afterAll(async () => {
    await stop(proxy);
    await server.close();
    await ledger.close();
    await store.cleanup();
  });

  it('retries every 500 with the same ids: each event stored exactly once, and close() resolves', async () => {
    const retried: number[] = [];
    const givenUp: string[] = [];
    const client = createClient({
      url: proxyUrl,
      flushEvents: 40,
      flushIntervalMs: 10,
      batchEvents: 25,
      onError: (error, context) => {
        if (context.retrying) retried.push((error as { status?: number }).status ?? 0);
        else givenUp.push(error.message);
      },
    });
    const jobIds = ['sdk500-a', 'sdk500-b', 'sdk500-c'];
    const sent = new Map(jobIds.map((jobId) => [jobId, [] as string[]]));
    for (const jobId of jobIds) {
      const eventId = randomUUID();
      sent.get(jobId)!.push(eventId);
      await client.job(jobId).start({ name: jobId, kind: 'sdk', project: 'faults' }, { eventId });
    }
    await recordItems(client, jobIds, 0, 250, sent);
    await client.close();

    expect(givenUp).toEqual([]);
    expect(faults.refused500).toBeGreaterThan(0);
    expect(faults.storedThen500).toBeGreaterThan(0);
    expect(retried.length).toBe(faults.refused500 + faults.storedThen500);
    expect(new Set(retried)).toEqual(new Set([500]));
    const counts = await storedCounts(ledger, jobIds);
    const expected = [...sent.values()].flat();
    expect(counts.size).toBe(expected.length);
    for (const eventId of expected) expect(counts.get(eventId)).toBe(1);
    for (const jobId of jobIds) {
      const stream = await ledger.readStream(jobId);
      expect(stream.map((event) => event.eventId)).toEqual(sent.get(jobId));
    }
  });
});

/** `headway serve` on PostgreSQL in a child process, killed and restarted on one port. */
class ServeProcess {
  child: ChildProcessWithoutNullStreams | null = null;
  port = 0;

  constructor(private readonly schema: string) {}

  async start(): Promise<void> {
    const child = spawn(
      process.execPath,
      [headwayBin, '--schema', this.schema, 'serve', '--port', String(this.port)],
      { env: { ...cliEnv(), DATABASE_URL: postgresUrl } },
    );
    this.child = child;
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const serving = /Headway serving .* on http:\/\/127\.0\.0\.1:(\d+)/;
    const deadline = Date.now() + 60_000;
    while (!serving.test(output) && child.exitCode === null && Date.now() < deadline) {
      await delay(25);
    }
    const match = serving.exec(output);
    if (!match) throw new Error(`headway serve did not start: ${output}`);
    this.port = Number(match[1]);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** SIGKILL, and wait (bounded) until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await Promise.race([exited, delay(10_000)]);
  }
}

describe.skipIf(!postgresAvailable)('client SDK: the server killed twice (PostgreSQL)', () => {
  const schema = `hw_test_${randomBytes(6).toString('hex')}`;
  const serve = new ServeProcess(schema);
  let ledger: Ledger | null = null;

  afterAll(async () => {
    await serve.kill();
    await ledger?.close();
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      await client.query(`drop schema if exists ${schema} cascade`);
    } finally {
      await client.end();
    }
  });

  it('lands every event once, or close() names exactly the events missing', async () => {
    const retried: Error[] = [];
    await serve.start();
    const client = createClient({
      url: serve.url,
      flushEvents: 100,
      flushIntervalMs: 10,
      batchEvents: 100,
      // Bounded, so a server that never comes back fails the test instead of hanging it.
      giveUpAfterMs: 90_000,
      onError: (error, context) => {
        if (context.retrying) retried.push(error);
      },
    });
    const jobIds = ['kill-a', 'kill-b', 'kill-c', 'kill-d'];
    const sent = new Map(jobIds.map((jobId) => [jobId, [] as string[]]));
    for (const jobId of jobIds) {
      const eventId = randomUUID();
      sent.get(jobId)!.push(eventId);
      await client.job(jobId).start({ name: jobId, kind: 'sdk', project: 'faults' }, { eventId });
    }
    // 4 jobs x 500 items: killed right after the first third is recorded (batches in
    // flight or buffered), recording goes on against no server, restarted, killed again
    // right after the second third, restarted.
    await recordItems(client, jobIds, 0, 170, sent);
    await serve.kill();
    await recordItems(client, jobIds, 170, 340, sent);
    await serve.start();
    await recordItems(client, jobIds, 340, 500, sent);
    await serve.kill();
    await serve.start();
    let reported: EventsNotStoredError | null = null;
    await client.close().catch((error: unknown) => {
      if (!(error instanceof EventsNotStoredError)) throw error;
      reported = error;
    });

    ledger = await openLedger({ databaseUrl: postgresUrl, schema, migrate: false });
    const counts = await storedCounts(ledger, jobIds);
    const expected = [...sent.values()].flat();
    expect(expected.length).toBe(2_004);
    for (const count of counts.values()) expect(count).toBe(1);
    const missing = expected.filter((eventId) => !counts.has(eventId));
    const report = reported as EventsNotStoredError | null;
    // Named: exactly the missing events, plus, of a batch whose answer was lost before it
    // was given up (`maybeStored`), those that were stored all the same.
    const maybe = new Set(
      report?.jobs.flatMap((job) =>
        job.events
          .filter((event) => job.maybeStored && !event.heldBack)
          .map((event) => event.eventId),
      ),
    );
    const named = new Set(report?.eventIds ?? []);
    expect(named).toEqual(new Set([...missing, ...[...maybe].filter((id) => counts.has(id))]));
    expect(counts.size).toBe(expected.length - missing.length);
    // The kills were felt: batches failed on the network and were sent again.
    expect(retried.length).toBeGreaterThan(0);
  }, 240_000);
});

/** A stand-in server that answers every post the same way, and counts the posts. */
function fixedServer(): {
  server: Server;
  mode: { status: number; code: string };
  posts: Map<string, number>;
} {
  const mode = { status: 500, code: 'internal' };
  const posts = new Map<string, number>();
  const server = createHttpServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const jobId = decodeURIComponent(/\/v1\/jobs\/([^/]+)\/events/.exec(incoming.url ?? '')![1]!);
      posts.set(jobId, (posts.get(jobId) ?? 0) + 1);
      if (mode.status === 200) {
        const { events } = JSON.parse(Buffer.concat(chunks).toString()) as { events: unknown[] };
        outgoing.writeHead(200, { 'content-type': 'application/json' });
        outgoing.end(JSON.stringify({ jobId, version: events.length, events: [] }));
        return;
      }
      answer(outgoing, mode.status, mode.code);
    });
  });
  return { server, mode, posts };
}

describe('client SDK: giving up', () => {
  const fixed = fixedServer();
  let url: string;
  const clients: HeadwayClient[] = [];

  beforeAll(async () => {
    url = await listen(fixed.server);
  });
  afterEach(() => {
    fixed.posts.clear();
  });
  afterAll(async () => {
    // A test that failed early leaves its client: end it (a rejection is expected).
    await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
    await stop(fixed.server);
  });

  it('a server that answers 500 forever: close() rejects naming every event not stored', async () => {
    fixed.mode.status = 500;
    fixed.mode.code = 'internal';
    const onError: boolean[] = [];
    const client = createClient({
      url,
      flushEvents: 10,
      flushIntervalMs: 10,
      batchEvents: 10,
      giveUpAfterMs: 500,
      onError: (_error, context) => onError.push(context.retrying),
    });
    clients.push(client);
    const jobIds = ['forever-a', 'forever-b'];
    const sent = new Map(jobIds.map((jobId) => [jobId, [] as string[]]));
    await recordItems(client, jobIds, 0, 35, sent);

    const error = await client.close().then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(EventsNotStoredError);
    const report = error as EventsNotStoredError;
    expect(report.code).toBe('events_not_stored');
    expect(new Set(report.eventIds)).toEqual(new Set([...sent.values()].flat()));
    expect(report.eventIds.length).toBe(70);
    for (const jobId of jobIds) {
      const job = report.jobs.find((candidate) => candidate.jobId === jobId)!;
      // In recording order: the failed batch, then the batches held back behind it.
      expect(job.events.map((event) => event.eventId)).toEqual(sent.get(jobId));
      expect(job.events.map((event) => event.type)).toEqual(Array(35).fill('item.completed'));
      expect(job.events.filter((event) => !event.heldBack)).toHaveLength(10);
      expect(job).toMatchObject({
        status: 500,
        code: 'internal',
        retriesExhausted: true,
        // A 500 may come after the commit.
        maybeStored: true,
      });
      // Only the first batch was ever sent: nothing went out past the failure.
      expect(fixed.posts.get(jobId)).toBe(job.attempts);
    }
    // Every attempt but the last of each batch was followed by a retry.
    const attempts = report.jobs.reduce((sum, job) => sum + job.attempts, 0);
    expect(onError.filter((retrying) => retrying)).toHaveLength(attempts - 2);
    expect(onError.filter((retrying) => !retrying)).toHaveLength(2);
    expect(report.message).toMatch(
      /^70 events of 2 jobs not stored: job 'forever-[ab]': 10 in the failed batch \(maybe stored\) and 25 held back behind it \(given up after \d+ attempts, the last: HTTP 500: injected 500 internal\)/,
    );
  });

  for (const [status, code] of [
    [400, 'invalid_event'],
    [404, 'job_not_started'],
    [409, 'idempotency_conflict'],
    [409, 'concurrency'],
    [413, 'body_too_large'],
  ] as const) {
    it(`${status} ${code}: not retried; flush() rejects, reports once, and the job's new events go out again`, async () => {
      fixed.mode.status = status;
      fixed.mode.code = code;
      const retries: Error[] = [];
      let givenUp = 0;
      const client = createClient({
        url,
        flushEvents: 5,
        flushIntervalMs: 10,
        batchEvents: 5,
        onError: (error, context) => {
          if (context.retrying) retries.push(error);
          else givenUp += 1;
        },
      });
      clients.push(client);
      const sent = new Map([['final', [] as string[]]]);
      await recordItems(client, ['final'], 0, 12, sent);
      // Recorded after the failure and before it is reported: held back too.
      for (let wait = 0; givenUp === 0 && wait < 1_000; wait += 1) await delay(10);
      expect(givenUp).toBe(1);
      await recordItems(client, ['final'], 12, 14, sent);

      const error = await client.flush().then(
        () => null,
        (failure: unknown) => failure,
      );
      expect(error).toBeInstanceOf(EventsNotStoredError);
      const [job, ...others] = (error as EventsNotStoredError).jobs;
      expect(others).toEqual([]);
      expect(job).toMatchObject({
        jobId: 'final',
        status,
        code,
        attempts: 1,
        retriesExhausted: false,
        maybeStored: false,
      });
      expect(job!.events.map((event) => event.eventId)).toEqual(sent.get('final'));
      expect(retries).toEqual([]);
      expect(fixed.posts.get('final')).toBe(1);
      expect((error as EventsNotStoredError).message).toBe(
        `14 events of 1 job not stored: job 'final': 5 in the failed batch and 9 held back behind it (not retried: HTTP ${status}: injected ${status} ${code})`,
      );

      // Reported once: the hold ends, and the job's new events are sent.
      fixed.mode.status = 200;
      await client.flush();
      await recordItems(client, ['final'], 14, 17, sent);
      await client.close();
      expect(fixed.posts.get('final')).toBe(2);
    });
  }

  it('no server at all: the network error is retried, then named', async () => {
    // A port that was free a moment ago and has nothing listening now.
    const vacant = createHttpServer();
    const vacantUrl = await listen(vacant);
    await stop(vacant);
    const client = createClient({ url: vacantUrl, flushEvents: 3, giveUpAfterMs: 200 });
    clients.push(client);
    const sent = new Map([['nowhere', [] as string[]]]);
    await recordItems(client, ['nowhere'], 0, 4, sent);
    const error = await client.close().then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(EventsNotStoredError);
    const [job] = (error as EventsNotStoredError).jobs;
    expect(job).toMatchObject({
      jobId: 'nowhere',
      status: null,
      code: 'ECONNREFUSED',
      retriesExhausted: true,
      maybeStored: false,
    });
    expect(job!.events.map((event) => [event.eventId, event.heldBack])).toEqual(
      sent.get('nowhere')!.map((eventId, index) => [eventId, index >= 3]),
    );
  });
});
