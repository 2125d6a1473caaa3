import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { jobProgress } from '../../projections/index.ts';
import type { Ledger } from '../../src/ledger.ts';
import { openLedger } from '../../src/open-ledger.ts';
import { createClient, EventsNotStoredError } from '../../src/client/index.ts';
import type { HeadwayClient, StreamMessage } from '../../src/client/index.ts';
import { postgresAvailable, postgresUrl } from '../stores.ts';
import { findHaproxy, freePorts, Haproxy, haproxyConfig, HeadwayServer } from './processes.ts';
import type { HaproxyStat } from './processes.ts';
import { processOfConnection, runnerLockHolder } from './runner-lock.ts';
import type { LockHolder } from './runner-lock.ts';

// Several stateless `headway serve` processes on one PostgreSQL database behind HAProxy:
// appends through the balancer while a server is killed and restarted land once, every
// server's stored job views equal a fresh fold, a server streams what the others appended,
// and the projection runner moves to another server when its holder dies.

const haproxyBinary = findHaproxy();
if (haproxyBinary === null) {
  if (process.env.CI === 'true') {
    throw new Error(
      'CI=true requires haproxy on the PATH for test/topology/ (apt-get install -y haproxy), but it is missing',
    );
  }
  console.warn(
    '\n*** SKIPPING test/topology/balanced-servers.test.ts: haproxy is not installed (apt-get install -y haproxy).\n*** Under CI=true this fails instead.\n',
  );
}

/** The figures of the run; the load's length adapts to the machine, within bounds. */
const plan = {
  /** Producers through the balancer, each with its own job and its own client. */
  producers: 6,
  /** Each producer records at least this many item events… */
  minItems: 2_000,
  /**
   * …and keeps going until the killed server is back and has served some requests, up to
   * this bound (a safety net: about 20,000 each are recorded here in that time). The
   * clients buffer little, so recording keeps pace with what is stored: the load lasts as
   * long as the kill and restart, and its size follows the machine's speed.
   */
  maxItems: 60_000,
  maxBufferedEvents: 2_000,
  /** Load before the SIGKILL, the pause before the restart, load after the restart. */
  killAfterMs: 2_000,
  restartAfterMs: 2_000,
  loadAfterRestartMs: 1_000,
  /** Requests the restarted server must have served before the load ends (bounded wait). */
  requestsAfterRestart: 6,
  /** Runner takeovers measured: each kills the server that holds the runner. */
  takeovers: 2,
};

/** One producer's job: what it recorded, in order, and what its client reported. */
interface Producer {
  jobId: string;
  via: 'balancer' | 'others';
  /** Every event id recorded, in the order recorded (so, the job's version order). */
  eventIds: string[];
  completed: number;
  failed: number;
  skipped: number;
  /** Events the client gave up on (reported by `close()`), and those that may be stored. */
  notStored: Set<string>;
  maybeStored: Set<string>;
  /** Failed attempts the client sent again with the same ids. */
  retries: number;
  retryReasons: Map<string, number>;
  /** When its client closed. */
  doneAt?: number;
}

/** A stored event of a producer's job. */
interface StoredRow {
  stream_id: string;
  version: string;
  event_id: string;
}

describe.skipIf(haproxyBinary === null || !postgresAvailable)(
  'three headway serve processes on one PostgreSQL behind HAProxy',
  () => {
    const databasePort = Number(new URL(postgresUrl).port || 5432);
    let folder = '';
    let ledger: Ledger | undefined;
    let admin: pg.Client | undefined;
    let servers: HeadwayServer[] = [];
    let haproxy: Haproxy | undefined;
    let balancerUrl = '';
    let othersUrl = '';
    const producers: Producer[] = [];
    let watched: Producer | undefined;
    /** What the SSE client on s0 saw of the watched job, and its end. */
    const seen: StreamMessage[] = [];
    const stopWatching = new AbortController();
    let watching: Promise<void> = Promise.resolve();
    let watchFailure: Error | null = null;

    beforeAll(async () => {
      // Migrates the test's own database once, so no server migrates it concurrently.
      ledger = await openLedger({ databaseUrl: postgresUrl, poolSize: 4 });
      admin = new pg.Client({ connectionString: postgresUrl });
      await admin.connect();
      folder = await mkdtemp(join(tmpdir(), 'headway-topology-'));
      const [p0, p1, p2, balancerPort, othersPort, statsPort] = await freePorts(6);
      servers = [p0!, p1!, p2!].map(
        (port, index) => new HeadwayServer(`s${index}`, port, postgresUrl),
      );
      await Promise.all(servers.map((server) => server.start()));
      const config = haproxyConfig(
        [
          { name: 'balanced', port: balancerPort!, servers },
          // The watched job's appends go through s1 and s2 only; its stream is read on s0.
          { name: 'others', port: othersPort!, servers: servers.slice(1) },
        ],
        statsPort!,
      );
      haproxy = await Haproxy.start(haproxyBinary!, folder, config, statsPort!);
      await haproxy.waitUntilUp('balanced_servers', ['s0', 's1', 's2'], 20_000);
      await haproxy.waitUntilUp('others_servers', ['s1', 's2'], 20_000);
      balancerUrl = `http://127.0.0.1:${balancerPort}`;
      othersUrl = `http://127.0.0.1:${othersPort}`;
      console.log(
        `topology: ${servers.map((server) => `${server.name} ${server.url}`).join(', ')}; balancer ${balancerUrl}, others ${othersUrl}`,
      );
    }, 120_000);

    afterAll(async () => {
      stopWatching.abort();
      await watching.catch(() => undefined);
      // Every process is stopped, whatever failed before.
      await Promise.allSettled([haproxy?.stop(), ...servers.map((server) => server.stop())]);
      await ledger?.close();
      await admin?.end().catch(() => undefined);
      if (folder) await rm(folder, { recursive: true, force: true });
    }, 60_000);

    /** A producer with its own client, counting its retries. */
    function newProducer(via: Producer['via']): { producer: Producer; client: HeadwayClient } {
      const producer: Producer = {
        jobId: `topology-${via}-${randomUUID().slice(0, 8)}`,
        via,
        eventIds: [],
        completed: 0,
        failed: 0,
        skipped: 0,
        notStored: new Set(),
        maybeStored: new Set(),
        retries: 0,
        retryReasons: new Map(),
      };
      const client = createClient({
        url: via === 'balancer' ? balancerUrl : othersUrl,
        // Bounded: a batch not stored within a minute is reported, not retried forever.
        giveUpAfterMs: 60_000,
        requestTimeoutMs: 15_000,
        maxBufferedEvents: plan.maxBufferedEvents,
        onError: (error, context) => {
          if (!context.retrying) return;
          producer.retries += 1;
          const reason = error.message.slice(0, 60);
          producer.retryReasons.set(reason, (producer.retryReasons.get(reason) ?? 0) + 1);
        },
      });
      return { producer, client };
    }

    /**
     * Records a job: its start, items (mostly completed, some failed or skipped) in calls
     * of 50 until `enough` says so (at least `minItems`, at most `maxItems`), its end; then
     * closes the client, noting the events it reports as not stored.
     */
    async function produce(
      producer: Producer,
      client: HeadwayClient,
      minItems: number,
      maxItems: number,
      enough: () => boolean,
    ): Promise<void> {
      const job = client.job(producer.jobId);
      const id = () => {
        const eventId = randomUUID();
        producer.eventIds.push(eventId);
        return { eventId };
      };
      let failure: Error | null = null;
      try {
        await job.start({ name: 'balanced load', kind: 'topology', project: 'topology' }, id());
        for (let item = 0; item < maxItems && !(item >= minItems && enough());) {
          for (const end = item + 50; item < end; item++) {
            const itemId = `item-${item}`;
            if (item % 37 === 36) {
              producer.failed += 1;
              await job.itemFailed(itemId, new Error('ECONNRESET: upstream reset'), {}, id());
            } else if (item % 53 === 52) {
              producer.skipped += 1;
              await job.itemSkipped(itemId, { reason: 'duplicate' }, id());
            } else {
              producer.completed += 1;
              await job.itemCompleted(itemId, { durationMs: item % 17 }, id());
            }
          }
        }
        await job.complete(
          { items: producer.completed + producer.failed + producer.skipped },
          id(),
        );
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
      }
      // Closed whatever happened: it sends what is buffered, or reports what it gave up.
      try {
        await client.close();
      } catch (error) {
        if (!(error instanceof EventsNotStoredError)) failure ??= error as Error;
        else {
          for (const job of error.jobs) {
            for (const event of job.events) {
              producer.notStored.add(event.eventId);
              if (job.maybeStored) producer.maybeStored.add(event.eventId);
            }
          }
        }
      }
      producer.doneAt = Date.now();
      if (failure !== null) throw failure;
    }

    /** The stored events of these jobs, in version order. */
    async function storedEvents(jobIds: readonly string[]): Promise<Map<string, StoredRow[]>> {
      const { rows } = await admin!.query<StoredRow>(
        `select stream_id, version::text as version, event_id from events
          where stream_id = any($1) order by stream_id, events.version`,
        [jobIds],
      );
      const byJob = new Map<string, StoredRow[]>(jobIds.map((jobId) => [jobId, []]));
      for (const row of rows) byJob.get(row.stream_id)!.push(row);
      return byJob;
    }

    async function getJson(url: string): Promise<{ status: number; body: unknown }> {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const text = await response.text();
      return { status: response.status, body: text ? (JSON.parse(text) as unknown) : null };
    }

    test('appends through the balancer, with a server SIGKILLed and restarted, are each stored once', async () => {
      // The watcher on s0 follows the watched job from the log's start, so it misses nothing.
      const watchedRun = newProducer('others');
      watched = watchedRun.producer;
      const watcher = createClient({ url: servers[0]!.url });
      const watchedId = watched.jobId;
      watching = (async () => {
        for await (const message of watcher.events({
          jobs: [watchedId],
          after: '0:0',
          signal: stopWatching.signal,
        })) {
          if (message.event === 'event') seen.push(message);
        }
      })().catch((error: unknown) => {
        watchFailure = error instanceof Error ? error : new Error(String(error));
      });

      let loadDone = false;
      const enough = () => loadDone;
      const runs = Array.from({ length: plan.producers }, () => newProducer('balancer'));
      producers.push(...runs.map((run) => run.producer), watched);
      const startedAt = Date.now();
      const running = [
        ...runs.map(({ producer, client }) =>
          produce(producer, client, plan.minItems, plan.maxItems, enough),
        ),
        produce(watched, watchedRun.client, plan.minItems, plan.maxItems, enough),
      ];
      const victim = servers[2]!;
      const timeline: string[] = [];
      const mark = (what: string) => timeline.push(`${Date.now() - startedAt} ms ${what}`);
      let loadingAtRestart = 0;
      let chaosFailure: Error | null = null;
      let victimSessionsAtRestart = 0;
      const sessionsOf = (rows: HaproxyStat[], server: string) =>
        rows.filter((row) => row.server === server).reduce((sum, row) => sum + row.sessions, 0);
      try {
        await delay(plan.killAfterMs);
        await victim.kill();
        mark(`SIGKILL ${victim.name}`);
        await delay(plan.restartAfterMs);
        mark(`restarting ${victim.name} on port ${victim.port}`);
        await victim.start();
        mark(`${victim.name} healthy`);
        await haproxy!.waitUntilUp('balanced_servers', [victim.name], 20_000);
        mark(`${victim.name} up in haproxy`);
        loadingAtRestart = producers.filter((producer) => producer.doneAt === undefined).length;
        victimSessionsAtRestart = sessionsOf(await haproxy!.stats(), victim.name);
        for (const until = Date.now() + 15_000; Date.now() < until;) {
          const served = sessionsOf(await haproxy!.stats(), victim.name) - victimSessionsAtRestart;
          if (served >= plan.requestsAfterRestart) break;
          await delay(100);
        }
        await delay(plan.loadAfterRestartMs);
      } catch (error) {
        chaosFailure = error as Error;
      }
      // The producers stop (and their clients close) whatever happened above.
      loadDone = true;
      const outcomes = await Promise.allSettled(running);
      if (chaosFailure) throw chaosFailure;
      const loadMs = Date.now() - startedAt;
      mark('every client closed');
      await watcher.close();
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') throw outcome.reason;
      }

      const stored = await storedEvents(producers.map((producer) => producer.jobId));
      let storedTotal = 0;
      for (const producer of producers) {
        const rows = stored.get(producer.jobId)!;
        storedTotal += rows.length;
        const what = `job ${producer.jobId}`;
        // Versions 1..n, with no gap and no repeat.
        expect(
          rows.map((row) => Number(row.version)),
          what,
        ).toEqual(rows.map((_, index) => index + 1));
        const ids = rows.map((row) => row.event_id);
        expect(new Set(ids).size, `${what}: event ids unique`).toBe(ids.length);
        // Nothing stored that this producer did not record.
        const recorded = new Set(producer.eventIds);
        expect(
          ids.filter((eventId) => !recorded.has(eventId)),
          what,
        ).toEqual([]);
        // Everything the client was told was stored is stored; the rest only if maybe.
        const storedIds = new Set(ids);
        const toldStored = producer.eventIds.filter((eventId) => !producer.notStored.has(eventId));
        expect(
          toldStored.filter((eventId) => !storedIds.has(eventId)),
          `${what}: acknowledged but missing`,
        ).toEqual([]);
        expect(
          [...producer.notStored].filter(
            (eventId) => storedIds.has(eventId) && !producer.maybeStored.has(eventId),
          ),
          `${what}: reported as not stored, yet stored`,
        ).toEqual([]);
        if (producer.notStored.size === 0) {
          // In the order recorded: the client sends a job's batches one at a time.
          expect(ids, what).toEqual(producer.eventIds);
        }
      }
      const givenUp = producers.reduce((sum, producer) => sum + producer.notStored.size, 0);
      const retries = producers.reduce((sum, producer) => sum + producer.retries, 0);
      const reasons = new Map<string, number>();
      for (const producer of producers) {
        for (const [reason, count] of producer.retryReasons) {
          reasons.set(reason, (reasons.get(reason) ?? 0) + count);
        }
      }
      const stats = await haproxy!.stats();
      const serverRows = stats.filter((row) => row.server !== 'BACKEND' && row.proxy !== 'stats');
      console.log(
        [
          `balanced load: ${storedTotal} events of ${producers.length} jobs stored through HAProxy in ${loadMs} ms = ${Math.round((storedTotal / loadMs) * 1_000)} events/s`,
          `  per job: ${producers.map((producer) => `${producer.via} ${producer.eventIds.length}`).join(', ')}`,
          `  client retries (same event ids): ${retries}${reasons.size ? ` (${[...reasons].map(([reason, count]) => `${count}× ${reason}`).join('; ')})` : ''}; events given up: ${givenUp}`,
          `  ${timeline.join(' | ')}; ${loadingAtRestart} of ${producers.length} producers still recording when ${victim.name} was back, which then served ${sessionsOf(stats, victim.name) - victimSessionsAtRestart} more requests`,
          `  haproxy: ${serverRows.map((row) => `${row.proxy}/${row.server} ${row.status} sessions ${row.sessions} 5xx ${row.responses5xx} retries ${row.retries} redispatches ${row.redispatches} conn errors ${row.connectionErrors} resp errors ${row.responseErrors}`).join('; ')}`,
        ].join('\n'),
      );
      // A batch given up within a minute would mean the balancer lost the servers.
      expect(givenUp).toBe(0);
    }, 150_000);

    test('every server answers stored job views equal to a fresh fold of the log', async () => {
      expect(producers.length, 'the load ran').toBeGreaterThan(0);
      // Every server reports the jobs projection caught up.
      const deadline = Date.now() + 60_000;
      let lags: unknown[] = [];
      for (;;) {
        lags = await Promise.all(
          servers.map(async (server) => (await getJson(`${server.url}/v1/projections`)).body),
        );
        const caughtUp = lags.every(
          (rows) =>
            Array.isArray(rows) &&
            rows.length > 0 &&
            rows.every(
              (row: { lag: number; status: string }) => row.lag === 0 && row.status === 'active',
            ),
        );
        if (caughtUp) break;
        if (Date.now() > deadline)
          throw new Error(`no catch-up within 60 s: ${JSON.stringify(lags)}`);
        await delay(200);
      }
      for (const producer of producers) {
        const { items: _items, ...folded } = await ledger!.project(producer.jobId, jobProgress);
        const expected = JSON.parse(JSON.stringify(folded)) as Record<string, unknown>;
        expect(expected.status, producer.jobId).toBe('completed');
        expect(expected.counts, producer.jobId).toMatchObject({
          completed: producer.completed,
          failed: producer.failed,
          skipped: producer.skipped,
        });
        expect(expected.processed).toBe(producer.completed + producer.failed + producer.skipped);
        expect(expected.version).toBe(producer.eventIds.length);
        for (const server of servers) {
          const { status, body } = await getJson(`${server.url}/v1/jobs/${producer.jobId}`);
          expect(status, `${server.name} ${producer.jobId}`).toBe(200);
          expect(
            (body as { progress: unknown }).progress,
            `${server.name} ${producer.jobId}`,
          ).toEqual(expected);
        }
      }
      console.log(
        `projections: ${producers.length} jobs × ${servers.length} servers equal a fresh fold (status, counts, processed, total, stages, version, times: the whole progress)`,
      );
    }, 90_000);

    test('an SSE client on s0 sees every event of a job appended through s1 and s2', async () => {
      const producer = watched!;
      expect(producer, 'the load ran').toBeDefined();
      const deadline = Date.now() + 30_000;
      while (seen.length < producer.eventIds.length && Date.now() < deadline) await delay(100);
      stopWatching.abort();
      await watching;
      expect(watchFailure).toBeNull();
      const events = seen.map((message) => message.data as { version: number; eventId: string });
      expect(events.map((event) => event.version)).toEqual(
        producer.eventIds.map((_, index) => index + 1),
      );
      expect(events.map((event) => event.eventId)).toEqual(producer.eventIds);
      console.log(
        `sse: s0 streamed all ${events.length} events of ${producer.jobId}, appended through s1 and s2 (${producer.retries} client retries on that job)`,
      );
    }, 60_000);

    /** Which server holds the jobs runner, and the lock holder's backend. */
    async function runnerHolder(): Promise<{ holder: LockHolder; server: HeadwayServer } | null> {
      const holder = await runnerLockHolder(admin!, 'jobs');
      if (!holder) return null;
      const alive = servers.filter((server) => server.pid !== undefined);
      const pid = await processOfConnection(
        holder.clientPort,
        databasePort,
        alive.map((server) => server.pid!),
      );
      const server = alive.find((candidate) => candidate.pid === pid);
      if (!server) {
        throw new Error(
          `cannot tell which server holds the runner: backend ${holder.backendPid} (${holder.applicationName}) from client port ${holder.clientPort} matches no server's socket (/proc is Linux-only)`,
        );
      }
      return { holder, server };
    }

    test('the projection runner moves to another server when its holder is SIGKILLed', async () => {
      const figures: string[] = [];
      for (let round = 1; round <= plan.takeovers; round++) {
        // A runner between a failed batch and its retry holds no lock for a moment.
        let before = await runnerHolder();
        for (let tries = 0; before === null && tries < 100; tries++) {
          await delay(100);
          before = await runnerHolder();
        }
        expect(before, 'a server holds the jobs runner').not.toBeNull();
        expect(before!.holder.applicationName).toBe('headway-runner');
        const killedAt = Date.now();
        await before!.server.kill();
        const killedMs = Date.now() - killedAt;
        let releasedMs: number | null = null;
        let after: Awaited<ReturnType<typeof runnerHolder>> = null;
        let takeoverMs: number | null = null;
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const holder = await runnerLockHolder(admin!, 'jobs');
          if (holder?.backendPid !== before!.holder.backendPid)
            releasedMs ??= Date.now() - killedAt;
          if (holder && holder.backendPid !== before!.holder.backendPid) {
            takeoverMs = Date.now() - killedAt;
            after = await runnerHolder();
            break;
          }
          await delay(20);
        }
        expect(after, `another server took the runner within 30 s (round ${round})`).not.toBeNull();
        expect(after!.server).not.toBe(before!.server);
        expect(after!.server.alive).toBe(true);
        figures.push(
          `round ${round}: ${before!.server.name} killed (exit seen after ${killedMs} ms), lock released after ${releasedMs} ms, ${after!.server.name} held it after ${takeoverMs} ms`,
        );
      }
      // Each waiting runner tries the lock again every 2 s (ProjectionRunner's lockRetryMs).
      console.log(`runner takeover (lock retried every 2,000 ms): ${figures.join('; ')}`);
      // The servers left still serve through the balancer, whichever they are.
      const jobId = producers[0]!.jobId;
      const { status } = await getJson(`${balancerUrl}/v1/jobs/${jobId}`);
      expect(status).toBe(200);
    }, 90_000);
  },
);
