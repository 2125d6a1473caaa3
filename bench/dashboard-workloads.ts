import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Page } from 'playwright-core';
import type { EventInput } from '../schema/events.ts';
import type { Ledger } from '../src/ledger.ts';
import { readEventStream } from '../src/client/event-stream.ts';
import { createServer } from '../src/server/server.ts';
import { chromiumPath, hasChromium, launchChromium } from '../test/chromium.ts';
import { jobEvents } from './generate-events.ts';
import { percentile } from './stats.ts';

/** Milliseconds from an append call to its change in the page, and the server's part of it. */
export interface ScreenLatency {
  p50Ms: number;
  p95Ms: number;
  /** The same appends seen by a plain SSE reader of /v1/stream in this process. */
  sseP95Ms: number;
  samples: number;
}

/** How a page kept up while one job took a steady stream of events. */
export interface PageUnderLoad {
  /** Animation frames per second the page drew. */
  framesPerSec: number;
  /** The 95th percentile gap between frames. */
  frameP95Ms: number;
  /** How late a 50 ms timer fired, p95 and worst: what a click or key would have waited. */
  inputDelayP95Ms: number;
  inputDelayMaxMs: number;
  /** Main-thread tasks over 50 ms, in milliseconds per second of the run. */
  longTaskMsPerSec: number;
  /** Times per second the busy job's figures changed on screen. */
  updatesPerSec: number;
  /** API reads the page made per second, and their median time in the browser. */
  readsPerSec: number;
  readP50Ms: number;
}

export interface DashboardFigures {
  overviewLatency: ScreenLatency;
  jobPageLatency: ScreenLatency;
  load: {
    jobs: number;
    eventsPerSec: number;
    overview: PageUnderLoad;
    /** Typing a job's id in the search box to the list showing just that job (200 ms of it the pause typing waits for). */
    search: { p50Ms: number; p95Ms: number };
    jobPage: PageUnderLoad;
  };
}

/**
 * Runs in the page: resolves `window.seenAt` with the time `selector` first holds `text`
 * (is exactly `text` when `exact`).
 */
const watchFor = (selector: string, text: string, exact: boolean) => `(() => {
  const matches = () => {
    const shown = document.querySelector(${JSON.stringify(selector)})?.textContent.trim() ?? '';
    return ${exact ? 'shown ===' : 'shown.includes('} ${JSON.stringify(text)}${exact ? '' : ')'};
  };
  window.seenAt = new Promise((resolve) => {
    if (matches()) return resolve(Date.now());
    const observer = new MutationObserver(() => {
      if (!matches()) return;
      observer.disconnect();
      resolve(Date.now());
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  });
})()`;

/** Runs in the page: starts counting frames, timer lateness, long tasks and changes of `selector`. */
const startProbe = (selector: string) => `(() => {
  const probe = { frames: [], delays: [], longTaskMs: 0, updates: 0, running: true };
  let last = performance.now();
  const frame = () => {
    if (!probe.running) return;
    const now = performance.now();
    probe.frames.push(now - last);
    last = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  let due = performance.now() + 50;
  probe.timer = setInterval(() => {
    const now = performance.now();
    probe.delays.push(Math.max(0, now - due));
    due = now + 50;
  }, 50);
  probe.longTasks = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) probe.longTaskMs += entry.duration;
  });
  probe.longTasks.observe({ type: 'longtask' });
  let text = document.querySelector(${JSON.stringify(selector)})?.textContent;
  probe.changes = new MutationObserver(() => {
    const now = document.querySelector(${JSON.stringify(selector)})?.textContent;
    if (now !== text) probe.updates += 1;
    text = now;
  });
  probe.changes.observe(document.body, { subtree: true, childList: true, characterData: true });
  performance.setResourceTimingBufferSize(100000);
  performance.clearResourceTimings();
  probe.started = performance.now();
  window.probe = probe;
})()`;

const stopProbe = `(() => {
  const probe = window.probe;
  probe.running = false;
  clearInterval(probe.timer);
  probe.longTasks.disconnect();
  probe.changes.disconnect();
  const { frames, delays, longTaskMs, updates } = probe;
  const reads = performance.getEntriesByType('resource')
    .filter((entry) => entry.initiatorType === 'fetch' && new URL(entry.name).pathname.startsWith('/v1/'))
    .map((entry) => entry.duration);
  return { frames, delays, longTaskMs, updates, reads, seconds: (performance.now() - probe.started) / 1000 };
})()`;

interface ProbeResult {
  frames: number[];
  delays: number[];
  longTaskMs: number;
  updates: number;
  /** Durations of the page's API reads, as the browser timed them. */
  reads: number[];
  seconds: number;
}

function summarise(probe: ProbeResult): PageUnderLoad {
  const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
  const delays = sorted(probe.delays);
  return {
    framesPerSec: probe.frames.length / probe.seconds,
    frameP95Ms: percentile(sorted(probe.frames), 0.95),
    inputDelayP95Ms: percentile(delays, 0.95),
    inputDelayMaxMs: delays.at(-1) ?? 0,
    longTaskMsPerSec: probe.longTaskMs / probe.seconds,
    updatesPerSec: probe.updates / probe.seconds,
    readsPerSec: probe.reads.length / probe.seconds,
    readP50Ms: percentile(sorted(probe.reads), 0.5),
  };
}

/** Arrival times of events on /v1/stream, by event id, read as any SSE client would. */
function sseArrivals(url: string, signal: AbortSignal): Map<string, number> {
  const arrivals = new Map<string, number>();
  void (async () => {
    for await (const message of readEventStream(`${url}/v1/stream`, { signal })) {
      if (message.event !== 'event') continue;
      arrivals.set((message.data as { eventId: string }).eventId, Date.now());
    }
  })().catch(() => undefined);
  return arrivals;
}

/**
 * One job, one event per append, `samples` appends a third of a second apart: the time
 * from each append call to the page showing its new count (`selector` reading `expected(n)`).
 */
async function screenLatency(
  ledger: Ledger,
  page: Page,
  url: string,
  options: {
    jobId: string;
    samples: number;
    selector: string;
    expected: (completed: number) => string;
    exact: boolean;
  },
): Promise<ScreenLatency> {
  const stop = new AbortController();
  const arrivals = sseArrivals(url, stop.signal);
  const latencies: number[] = [];
  const sse: number[] = [];
  try {
    for (let index = 0; index < options.samples; index += 1) {
      await page.evaluate(watchFor(options.selector, options.expected(index + 1), options.exact));
      const eventId = crypto.randomUUID();
      const sentAt = Date.now();
      await ledger.append(options.jobId, [
        { type: 'item.completed', data: { itemId: `i${index}` }, eventId },
      ]);
      const seenAt = await page.evaluate<number>('window.seenAt');
      latencies.push(seenAt - sentAt);
      const arrived = arrivals.get(eventId);
      if (arrived !== undefined) sse.push(arrived - sentAt);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  } finally {
    stop.abort();
  }
  latencies.sort((a, b) => a - b);
  sse.sort((a, b) => a - b);
  return {
    p50Ms: percentile(latencies, 0.5),
    p95Ms: percentile(latencies, 0.95),
    sseP95Ms: percentile(sse, 0.95),
    samples: latencies.length,
  };
}

/** Appends to `jobId` at a steady `eventsPerSec`, 10 ms apart, until stopped. */
function steadyProducer(ledger: Ledger, jobId: string, eventsPerSec: number) {
  const tickMs = 10;
  const perTick = Math.round((eventsPerSec * tickMs) / 1_000);
  const events = jobEvents(jobId, 400_000);
  let running = true;
  const done = (async () => {
    const started = performance.now();
    for (let tick = 0, next = 0; running && next < events.length; tick += 1) {
      // Stamped now, as a live producer would: the busy job is the newest on the overview.
      const occurredAt = new Date();
      const batch = events.slice(next, next + perTick).map((event) => ({ ...event, occurredAt }));
      await ledger.append(jobId, batch);
      next += perTick;
      const due = started + (tick + 1) * tickMs;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
    },
  };
}

/** `jobs` small jobs in one project, written in batches of 100 jobs. */
async function seedJobs(ledger: Ledger, jobs: number): Promise<void> {
  for (let first = 0; first < jobs; first += 100) {
    const streams = Array.from({ length: Math.min(100, jobs - first) }, (_, offset) => {
      const jobId = `fleet-${String(first + offset).padStart(4, '0')}`;
      const events: EventInput[] = [
        {
          type: 'job.started',
          data: { name: jobId, kind: 'crawl', project: 'fleet', total: 10 },
        },
        ...Array.from({ length: 5 }, (_, item): EventInput => ({
          type: 'item.completed',
          data: { itemId: `${jobId}-${item}`, durationMs: 20 },
        })),
      ];
      return { streamId: jobId, events };
    });
    await ledger.appendMany(streams);
  }
}

/**
 * dashboardLatency and dashboardLoad: `headway serve` as it runs (a server and its runner
 * in this process) with Debian's Chromium on the dashboard. Latency: one job, one event per
 * append, on the overview and on the job page. Load: 1,000 jobs, the overview's first page,
 * searching among them, and the busy job's page, while one job takes 2,000 events/s.
 */
export async function dashboardWorkloads(
  ledger: Ledger,
  options: { samples: number; loadSeconds: number; log?: (message: string) => void },
): Promise<DashboardFigures> {
  if (!hasChromium()) {
    throw new Error(
      `the dashboard figures need Chromium at ${chromiumPath} (apt-get install -y chromium)`,
    );
  }
  const server = await createServer({ ledger });
  // What the server spent on each route while the pages were under load, for the log.
  let routeTimes: Map<string, number[]> | null = null;
  server.server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const started = performance.now();
    response.once('finish', () => {
      if (!routeTimes) return;
      const route = (request.url ?? '').replace(/\?.*/, '').replace(/\/jobs\/[^/]+/, '/jobs/:id');
      routeTimes.set(route, [...(routeTimes.get(route) ?? []), performance.now() - started]);
    });
  });
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const logRouteTimes = (label: string) => {
    const lines = [...(routeTimes ?? [])].map(([route, times]) => {
      times.sort((a, b) => a - b);
      return `${route} ×${times.length} p50 ${percentile(times, 0.5).toFixed(1)} ms`;
    });
    const delay = `event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms, max ${(loop.max / 1e6).toFixed(0)} ms`;
    options.log?.(`${label} server time: ${lines.join(', ')}; ${delay}`);
    routeTimes = null;
  };
  const startRouteTimes = () => {
    routeTimes = new Map();
    loop.reset();
  };
  const runners = ledger.runProjections();
  const browser = await launchChromium();
  try {
    await server.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });

    const latencyJob = { name: 'latency', kind: 'bench', project: 'latency', total: 1_000 };
    await ledger.job('latency-overview').start(latencyJob);
    await page.goto(`${url}/`);
    await page.locator('tr[data-job-id="latency-overview"]').waitFor();
    const overviewLatency = await screenLatency(ledger, page, url, {
      jobId: 'latency-overview',
      samples: options.samples,
      selector: 'tr[data-job-id="latency-overview"] .percent',
      expected: (completed) => `(${completed}/`,
      exact: false,
    });
    await ledger.job('latency-job').start(latencyJob);
    await page.goto(`${url}/jobs/latency-job`);
    await page.locator('#counts').waitFor();
    const jobPageLatency = await screenLatency(ledger, page, url, {
      jobId: 'latency-job',
      samples: options.samples,
      selector: '#counts td:nth-child(4)',
      expected: (completed) => String(completed),
      exact: true,
    });

    const jobs = 1_000;
    const eventsPerSec = 2_000;
    await seedJobs(ledger, jobs - 1);
    await ledger.catchUpProjections();
    await page.goto(`${url}/`);
    const producer = steadyProducer(ledger, 'busy-0001', eventsPerSec);
    let overview: PageUnderLoad;
    let jobPage: PageUnderLoad;
    const searches: number[] = [];
    try {
      await page.locator('tr[data-job-id="busy-0001"]').waitFor();
      startRouteTimes();
      overview = await measure(page, 'tr[data-job-id="busy-0001"] .percent', options.loadSeconds);
      logRouteTimes('overview');
      // Finding one job of the thousand by typing its id: typing to the one row shown.
      for (let index = 0; index < 10; index += 1) {
        const jobId = `fleet-${String(index * 97).padStart(4, '0')}`;
        const started = performance.now();
        await page.fill('input[name="search"]', jobId);
        await page.waitForFunction(
          `[...document.querySelectorAll('#jobs tbody tr')].map((row) => row.dataset.jobId).join() === ${JSON.stringify(jobId)}`,
          undefined,
          { polling: 'raf' },
        );
        searches.push(performance.now() - started);
      }
      await page.goto(`${url}/jobs/busy-0001`);
      await page.locator('#counts').waitFor();
      startRouteTimes();
      jobPage = await measure(page, '#counts', options.loadSeconds);
      logRouteTimes('job page');
    } finally {
      await producer.stop();
    }
    searches.sort((a, b) => a - b);
    const search = { p50Ms: percentile(searches, 0.5), p95Ms: percentile(searches, 0.95) };
    return {
      overviewLatency,
      jobPageLatency,
      load: { jobs, eventsPerSec, overview, search, jobPage },
    };
  } finally {
    loop.disable();
    await browser.close();
    await server.close();
    await runners.stop();
  }
}

async function measure(page: Page, selector: string, seconds: number): Promise<PageUnderLoad> {
  await page.evaluate(startProbe(selector));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1_000));
  return summarise(await page.evaluate<ProbeResult>(stopProbe));
}
