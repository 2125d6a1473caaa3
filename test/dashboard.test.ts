import { mkdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventInput } from '../schema/events.ts';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { parseTokens } from '../src/server/auth.ts';
import { createServer } from '../src/server/server.ts';
import { chromiumPath, hasChromium, launchChromium } from './chromium.ts';

const artifacts = new URL('./artifacts/', import.meta.url).pathname;
const token = 'dashboard-token-0123456789';

if (!hasChromium()) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true requires Chromium at ${chromiumPath} (apt-get install -y chromium)`);
  }
  console.warn(`\n*** SKIPPING the browser tests: no Chromium at ${chromiumPath}.\n`);
}

/**
 * Runs in the page: every visible element with text of its own whose contrast against the
 * first opaque background behind it is under 4.5:1, as [text, ratio] pairs.
 */
const contrastCheck = `(() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) ?? []).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (value) => {
      const c = value / 255;
      return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (element) => {
    for (let node = element; node; node = node.parentElement) {
      const colour = rgb(getComputedStyle(node).backgroundColor);
      if (colour.length === 3 || colour[3] === 1) return colour.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failing = [];
  for (const element of document.querySelectorAll('body *')) {
    const own = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || element.getClientRects().length === 0) continue;
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden') continue;
    const [fg, bg] = [luminance(rgb(style.color)), luminance(background(element))];
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) failing.push([element.textContent.trim().slice(0, 40), ratio.toFixed(2)]);
  }
  return failing;
})()`;

describe.skipIf(!hasChromium())('dashboard in headless Chromium', () => {
  let ledger: Ledger;
  let server: FastifyInstance;
  let browser: Browser;
  let page: Page;
  let base: string;

  beforeAll(async () => {
    ledger = await openLedger({ dataDir: 'memory://' });
    server = await createServer({
      ledger,
      tokens: parseTokens(JSON.stringify({ [token]: ['read'] })),
    });
    await server.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    await mkdir(artifacts, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await ledger?.close();
  });

  /** The progress bar's value in a job's row. */
  const progressOf = (jobId: string) =>
    page
      .locator(`tr[data-job-id="${jobId}"] progress`)
      .evaluate((bar) => (bar as unknown as { value: number }).value);

  it('lists a job started through the API and moves its bar live, with no reload', async () => {
    const job = ledger.job('live-crawl');
    await job.start({ name: 'live crawl', kind: 'crawl', project: 'web', total: 10 });
    await page.goto(`${base}/?token=${token}`);
    // The token is kept for the session and taken out of the address.
    expect(new URL(page.url()).searchParams.has('token')).toBe(false);
    await expect.poll(() => page.locator('#connection').textContent()).toBe('Live');
    const row = page.locator('tr[data-job-id="live-crawl"]');
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('td').nth(3).textContent()).toBe('running');
    expect(await progressOf('live-crawl')).toBe(0);

    // Items 0–2, then 3–6: the bar reads 30, then 70, each within a second, with no reload.
    for (const [from, to] of [
      [0, 3],
      [3, 7],
    ] as const) {
      const navigations: string[] = [];
      page.on('framenavigated', (frame) => navigations.push(frame.url()));
      const before = Date.now();
      await job.record(
        Array.from({ length: to - from }, (_, index) => ({
          type: 'item.completed' as const,
          data: { itemId: `item-${from + index}` },
        })),
      );
      await expect
        .poll(() => progressOf('live-crawl'), { timeout: 1_000, interval: 25 })
        .toBe(to * 10);
      expect(Date.now() - before).toBeLessThan(1_000);
      expect(navigations).toEqual([]);
    }
    expect(await row.locator('.percent').textContent()).toBe('70.0% (7/10)');

    // A job started while the page is open appears without a reload.
    await ledger.job('late-job').start({ name: 'late job', kind: 'index', project: 'docs' });
    await expect.poll(() => page.locator('tr[data-job-id="late-job"]').count()).toBe(1);
    await page.screenshot({ path: `${artifacts}overview.png`, fullPage: true });
  });

  it('narrows the list by project, status and text', async () => {
    await ledger.job('done-job').start({ name: 'finished thing', kind: 'crawl', project: 'web' });
    await ledger.job('done-job').complete();
    const visible = async () =>
      (
        await page
          .locator('#jobs tbody tr')
          .evaluateAll((rows) =>
            rows.map((row) => (row as unknown as { dataset: { jobId: string } }).dataset.jobId),
          )
      ).sort();
    await expect.poll(visible).toEqual(['done-job', 'late-job', 'live-crawl']);
    await page.fill('input[name="project"]', 'web');
    await expect.poll(visible).toEqual(['done-job', 'live-crawl']);
    await page.selectOption('select[name="status"]', 'completed');
    await expect.poll(visible).toEqual(['done-job']);
    await page.selectOption('select[name="status"]', '');
    await page.fill('input[name="search"]', 'live');
    await expect.poll(visible).toEqual(['live-crawl']);
    await page.fill('input[name="search"]', '');
    await page.fill('input[name="project"]', '');
    await expect.poll(visible).toEqual(['done-job', 'late-job', 'live-crawl']);
  });

  /** A job whose every figure is known: two stages, failures in two groups, a checkpoint. */
  async function recordKnownJob() {
    const t0 = Date.parse('2026-11-30T10:00:00Z');
    const at = (seconds: number) => new Date(t0 + seconds * 1_000).toISOString();
    const facts: EventInput[] = [
      {
        type: 'job.started',
        data: {
          name: 'known job',
          kind: 'crawl',
          project: 'docs',
          total: 10,
          stages: [{ name: 'fetch' }, { name: 'parse', weight: 3 }],
        },
      },
      { type: 'stage.started', data: { stage: 'fetch', total: 4 } },
      { type: 'item.completed', data: { itemId: 'a', type: 'html', durationMs: 100 } },
      { type: 'item.completed', data: { itemId: 'b', type: 'html', durationMs: 300 } },
      ...['c', 'd'].map((itemId, index): EventInput => ({
        type: 'item.failed',
        data: {
          itemId,
          type: 'pdf',
          error: { message: `read ECONNRESET on 10.0.0.${index + 1}`, code: 'ECONNRESET' },
        },
      })),
      { type: 'stage.started', data: { stage: 'parse', total: 4 } },
      { type: 'item.skipped', data: { itemId: 'e', type: 'html', reason: 'duplicate' } },
      {
        type: 'item.failed',
        data: {
          itemId: 'f',
          type: 'pdf',
          error: { message: 'unsupported format', category: 'not_applicable' },
        },
      },
      { type: 'checkpoint.saved', data: { cursor: { page: 3 }, note: 'after f' } },
      { type: 'items.planned', data: { items: [{ id: 'g' }] } },
      { type: 'item.started', data: { itemId: 'h', leaseMs: 1 } },
      { type: 'log.written', data: { level: 'warn', message: 'slow origin' } },
      { type: 'log.written', data: { level: 'info', message: 'still going' } },
      { type: 'x.deploy', data: { to: 'eu' } },
    ];
    // Stage fetch runs from 0 s to 10 s; every other fact one second after the one before.
    const seconds = [0, 0, 1, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18];
    await ledger.append(
      'known-job',
      facts.map((fact, index) => ({ ...fact, occurredAt: at(seconds[index]!) })),
    );
  }

  /** Texts of the elements a selector finds, trimmed and with spaces collapsed. */
  const textsOf = async (target: Page, selector: string) =>
    (await target.locator(selector).allTextContents()).map((text) =>
      text.replace(/\s+/g, ' ').trim(),
    );

  it('shows a job page with its stages, counts, failure groups, resume point and timeline', async () => {
    await recordKnownJob();
    await page.goto(`${base}/`);
    await expect.poll(() => page.locator('tr[data-job-id="known-job"]').count()).toBe(1);
    // Reached by keyboard, opened without a reload.
    await page.evaluate('window.stillThisPage = true');
    let focused = '';
    for (let tab = 0; tab < 40 && focused !== '/jobs/known-job'; tab += 1) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate<string>("document.activeElement.getAttribute('href') ?? ''");
    }
    expect(focused).toBe('/jobs/known-job');
    await page.keyboard.press('Enter');
    await expect.poll(() => new URL(page.url()).pathname).toBe('/jobs/known-job');
    expect(await page.evaluate('window.stillThisPage')).toBe(true);

    await expect.poll(() => page.locator('#job-status').textContent()).toBe('running');
    expect(await page.locator('h2').textContent()).toBe('known job');
    // fetch (weight 1) is done and parse (weight 3) half: (1 + 1.5) / 4.
    expect(await textsOf(page, '#overall .percent')).toEqual(['62.5% (6/10)']);
    expect(await textsOf(page, '#counts td')).toEqual(['8', '1', '1', '2', '3', '1']);
    expect(await textsOf(page, '#by-type tbody tr')).toEqual(['html 2 0 1', 'pdf 0 3 0']);
    expect(await textsOf(page, '.stage .stage-figures')).toEqual([
      '10s · 4 / 4 · 2 failed',
      // parse's own counts: h in flight, g pending; its ETA from the fetch stage's pace.
      expect.stringMatching(
        /^\S.* · 2 \/ 4 · 1 failed · 1 skipped · 1 in flight · 1 pending · ETA \S+ at its own rate$/,
      ),
    ]);
    expect(await textsOf(page, '.stage[data-state="current"] .stage-label')).toEqual([
      'parse weight 3 (current)',
    ]);

    await expect.poll(() => page.locator('.failure-groups tbody tr').count()).toBe(2);
    const groups = [];
    for (const row of await page.locator('.failure-groups tbody tr').all()) {
      groups.push((await row.locator('td').allTextContents()).slice(0, 4).map((t) => t.trim()));
    }
    expect(groups).toEqual([
      ['network', 'read ECONNRESET on <n>.<n>.<n>.<n>', '2', 'yes'],
      ['not_applicable', 'unsupported format', '1', 'no'],
    ]);
    expect(await textsOf(page, '.failure-groups .items')).toEqual(['c, d', 'f']);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.click('#download-failures'),
    ]);
    expect(download.suggestedFilename()).toBe('known-job-failures.json');
    const report = JSON.parse(await readFile(await download.path(), 'utf8')) as unknown;
    expect(report).toMatchObject({ jobId: 'known-job', totalFailures: 3 });

    expect(await textsOf(page, '#checkpoint code')).toEqual(['{"page":3}']);
    await expect.poll(() => textsOf(page, '#pending .items')).toEqual(['g']);
    await expect.poll(() => textsOf(page, '#stuck .items')).toEqual(['h']);
    expect(await page.locator('.chart canvas').count()).toBe(1);

    // The timeline: newest first, custom events included, filtered by the server.
    const timelineTypes = () => textsOf(page, '#timeline .event-type');
    await expect.poll(async () => (await timelineTypes()).length).toBe(15);
    expect((await timelineTypes())[0]).toBe('x.deploy');
    await page.selectOption('#timeline select[name="type"]', 'x.*');
    await expect.poll(timelineTypes).toEqual(['x.deploy']);
    await page.selectOption('#timeline select[name="type"]', 'item.failed');
    await expect.poll(timelineTypes).toEqual(['item.failed', 'item.failed', 'item.failed']);
    await page.selectOption('#timeline select[name="type"]', '');
    await page.fill('#timeline input[name="text"]', 'econnreset');
    await page.press('#timeline input[name="text"]', 'Enter');
    await expect.poll(timelineTypes).toEqual(['item.failed', 'item.failed']);
    await page.fill('#timeline input[name="since"]', '2026-11-30T10:00:13');
    await page.press('#timeline input[name="since"]', 'Enter');
    await expect.poll(timelineTypes).toEqual([]);
    await page.fill('#timeline input[name="text"]', '');
    await page.press('#timeline input[name="text"]', 'Enter');
    // Local time, as the browser shows it: the test runs in the machine's zone.
    const since = new Date(Date.parse('2026-11-30T10:00:13Z'));
    const local = (date: Date) =>
      new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    await page.fill('#timeline input[name="since"]', local(since));
    await page.press('#timeline input[name="since"]', 'Enter');
    await expect
      .poll(timelineTypes)
      .toEqual([
        'x.deploy',
        'log.written',
        'log.written',
        'item.started',
        'items.planned',
        'checkpoint.saved',
      ]);
    await page.fill('#timeline input[name="since"]', '');
    await page.press('#timeline input[name="since"]', 'Enter');

    const logLines = () => textsOf(page, '#log .event-summary');
    await expect.poll(logLines).toEqual(['info: still going', 'warn: slow origin']);
    await page.selectOption('#log select[name="level"]', 'warn');
    await expect.poll(logLines).toEqual(['warn: slow origin']);

    // Live: a new event shows in the counts and on top of the timeline, with no reload.
    await ledger.append('known-job', [
      { type: 'item.completed', data: { itemId: 'g', type: 'html' } },
    ]);
    await expect.poll(() => textsOf(page, '#counts td')).toEqual(['8', '0', '1', '3', '3', '1']);
    await expect.poll(async () => (await timelineTypes())[0]).toBe('item.completed');
    await expect.poll(() => textsOf(page, '#pending')).toEqual(['none']);
    expect(await page.evaluate('window.stillThisPage')).toBe(true);
    await page.screenshot({ path: `${artifacts}job.png`, fullPage: true });
  });

  it('shows a project with its totals, its jobs and stage metrics across them', async () => {
    await page.goto(`${base}/projects/docs`);
    await expect
      .poll(() => page.locator('#project-totals').textContent(), { timeout: 5_000 })
      .toContain('Jobs');
    await expect
      .poll(() => textsOf(page, 'table.jobs tbody tr td:first-child'))
      .toEqual(['known job', 'late job']);
    // Only finished stage runs are measured: fetch took 10 s.
    expect(await textsOf(page, '#stage-metrics tbody tr')).toEqual([
      'crawl fetch 1 10s 10s 0.40/s',
    ]);
    const totals = await textsOf(page, '#project-totals > div');
    expect(totals).toEqual(
      expect.arrayContaining(['Jobs 2', 'running 2', 'Completed 3', 'Failed 3', 'Skipped 1']),
    );
    await page.screenshot({ path: `${artifacts}project.png`, fullPage: true });
  });

  it("shows a stalled job's condition as a badge on its page and in the overview, live", async () => {
    // Their last event an hour ago, past their own threshold of a second: stalled at once.
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    for (const jobId of ['stalled-job', 'stalled-then-done']) {
      await ledger.append(jobId, [
        {
          type: 'job.started',
          occurredAt: hourAgo,
          data: { name: jobId, kind: 'sync', project: 'ops', stallAfterMs: 1_000 },
        },
      ]);
    }
    await ledger.job('healthy-job').start({ name: 'healthy job', kind: 'sync', project: 'ops' });
    const conditionsIn = (selector: string) =>
      page
        .locator(`${selector} [data-condition]`)
        .evaluateAll((found) =>
          found.map((badge) => (badge as unknown as { dataset: { condition: string } }).dataset),
        )
        .then((datasets) => datasets.map(({ condition }) => condition));
    const silentAnHour = /^stalled · silent 1h 0\dm$/;

    await page.goto(`${base}/jobs/stalled-job?token=${token}`);
    await expect.poll(() => page.locator('#job-status').textContent()).toBe('running');
    expect(await conditionsIn('.job-title')).toEqual(['stalled']);
    const badge = page.locator('.job-title [data-condition="stalled"]');
    expect((await badge.textContent())?.trim()).toMatch(silentAnHour);
    expect(await badge.getAttribute('title')).toMatch(
      /^No event for longer than 1s, the job's own threshold; last event at .+$/,
    );
    expect((await textsOf(page, '#last-event'))[0]).toMatch(/^· last event 1h 0\dm ago$/);
    await page.screenshot({ path: `${artifacts}job-stalled.png` });

    await page.goto(`${base}/jobs/healthy-job`);
    await expect.poll(() => page.locator('#job-status').textContent()).toBe('running');
    expect(await page.locator('[data-condition]').count()).toBe(0);
    expect((await textsOf(page, '#last-event'))[0]).toMatch(/^· last event \S+( \S+)? ago$/);

    await page.goto(`${base}/`);
    const row = (jobId: string) => `tr[data-job-id="${jobId}"]`;
    await expect.poll(() => page.locator(row('healthy-job')).count()).toBe(1);
    expect(await conditionsIn(row('healthy-job'))).toEqual([]);
    expect(await textsOf(page, `${row('healthy-job')} td:nth-child(4)`)).toEqual(['running']);
    await expect.poll(() => conditionsIn(row('stalled-job'))).toEqual(['stalled']);
    expect((await textsOf(page, `${row('stalled-job')} td:nth-child(4)`))[0]).toMatch(
      /^running stalled · silent 1h 0\dm$/,
    );

    // Stalled only: the server is asked for stalled jobs.
    const visible = () =>
      page
        .locator('#jobs tbody tr')
        .evaluateAll((rows) =>
          rows.map((tr) => (tr as unknown as { dataset: { jobId: string } }).dataset.jobId),
        )
        .then((ids) => ids.sort());
    await page.check('input[name="stalled"]');
    await expect.poll(visible).toEqual(['stalled-job', 'stalled-then-done']);
    expect(new URL(page.url()).search).toBe('?stalled=1');
    await page.uncheck('input[name="stalled"]');
    await expect.poll(async () => (await visible()).length).toBeGreaterThan(2);

    // Live: a job that ends is no longer stalled, and its badge goes with no reload.
    expect(await conditionsIn(row('stalled-then-done'))).toEqual(['stalled']);
    await ledger.job('stalled-then-done').complete();
    await expect
      .poll(() => textsOf(page, `${row('stalled-then-done')} td:nth-child(4)`))
      .toEqual(['completed']);
    expect(await conditionsIn(row('stalled-then-done'))).toEqual([]);
    expect(await conditionsIn(row('stalled-job'))).toEqual(['stalled']);
    await page.screenshot({ path: `${artifacts}overview-conditions.png` });
  });

  it('shows an outage when the server stops, and recovers when it returns', async () => {
    const port = (server.server.address() as AddressInfo).port;
    await page.goto(`${base}/`);
    await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('live');
    await server.close();
    await expect
      .poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('down');
    await expect
      .poll(() => page.locator('#connection').textContent(), { timeout: 10_000 })
      .toBe('Server unreachable; retrying…');
    await page.screenshot({ path: `${artifacts}overview-outage.png` });
    // While it is down, a job starts; the page shows it once the server is back.
    await ledger.job('while-down').start({ name: 'while down', kind: 'k', project: 'web' });
    server = await createServer({
      ledger,
      tokens: parseTokens(JSON.stringify({ [token]: ['read'] })),
    });
    await server.listen({ host: '127.0.0.1', port });
    await expect
      .poll(() => page.locator('#connection').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('live');
    await expect.poll(() => page.locator('tr[data-job-id="while-down"]').count()).toBe(1);
  });

  it('keeps text readable: WCAG AA contrast (4.5:1) for the text of every page, light and dark', async () => {
    for (const [path, colorScheme] of [
      ['/', 'light'],
      ['/jobs/known-job', 'light'],
      ['/projects/docs', 'light'],
      ['/', 'dark'],
      ['/jobs/known-job', 'dark'],
    ] as const) {
      await page.emulateMedia({ colorScheme });
      await page.goto(`${base}${path}`);
      await expect.poll(() => page.locator('#connection').getAttribute('data-state')).toBe('live');
      await expect.poll(() => page.locator('main table tbody tr').count()).toBeGreaterThan(0);
      // Each element with text of its own, against the first opaque background behind it.
      const worst = await page.evaluate(contrastCheck);
      expect(worst, `${path} (${colorScheme}): ${JSON.stringify(worst)}`).toEqual([]);
    }
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('fits a phone-width screen, keeping job, status and progress', async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 800 } });
    try {
      await phone.goto(`${base}/?token=${token}`);
      await expect.poll(() => phone.locator('tr[data-job-id="live-crawl"]').count()).toBe(1);
      const row = phone.locator('tr[data-job-id="live-crawl"]');
      expect(await row.locator('progress').isVisible()).toBe(true);
      expect(await row.locator('td').nth(1).isVisible()).toBe(false);
      const overflow = await phone.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      expect(overflow).toBeLessThanOrEqual(0);
      await phone.screenshot({ path: `${artifacts}overview-phone.png`, fullPage: true });

      await phone.goto(`${base}/jobs/known-job`);
      await expect.poll(() => phone.locator('.failure-groups tbody tr').count()).toBe(2);
      await expect.poll(() => phone.locator('#timeline .event-type').count()).toBe(16);
      const jobOverflow = await phone.evaluate<number>(
        'document.documentElement.scrollWidth - window.innerWidth',
      );
      expect(jobOverflow).toBeLessThanOrEqual(0);
      await phone.screenshot({ path: `${artifacts}job-phone.png`, fullPage: true });
    } finally {
      await phone.close();
    }
  });
  it('pages through a thousand jobs a hundred at a time, and finds any of them by text', async () => {
    const t0 = Date.parse('2026-11-29T00:00:00Z');
    const ids = Array.from(
      { length: 1_000 },
      (_, index) => `bulk-${String(index).padStart(4, '0')}`,
    );
    for (let first = 0; first < ids.length; first += 250) {
      await ledger.appendMany(
        ids.slice(first, first + 250).map((jobId, offset) => ({
          streamId: jobId,
          events: [
            {
              type: 'job.started',
              data: { name: jobId, kind: 'bulk', project: 'bulk' },
              // bulk-0999 is the newest, bulk-0000 the oldest.
              occurredAt: new Date(t0 + (first + offset) * 1_000).toISOString(),
            },
          ],
        })),
      );
    }
    await page.goto(`${base}/?project=bulk`);
    const rows = () =>
      page
        .locator('#jobs tbody tr')
        .evaluateAll((found) =>
          found.map((row) => (row as unknown as { dataset: { jobId: string } }).dataset.jobId),
        );
    await expect.poll(async () => (await rows()).length).toBe(100);
    expect((await rows()).slice(0, 2)).toEqual(['bulk-0999', 'bulk-0998']);
    for (let pageNumber = 2; pageNumber <= 10; pageNumber += 1) {
      await page.click('#next-page');
      await expect
        .poll(() => page.locator('#page-number').textContent())
        .toBe(`Page ${pageNumber}`);
      const first = `bulk-${String(1_000 - (pageNumber - 1) * 100 - 1).padStart(4, '0')}`;
      await expect.poll(async () => (await rows())[0]).toBe(first);
      expect(await rows()).toHaveLength(100);
    }
    expect((await rows()).at(-1)).toBe('bulk-0000');
    expect(await page.locator('#next-page').isDisabled()).toBe(true);
    await page.click('#previous-page');
    await expect.poll(async () => (await rows())[0]).toBe('bulk-0199');
    // Text is searched on the server: the oldest job is found from the first page.
    await page.fill('input[name="search"]', 'BULK-0000');
    await expect.poll(rows).toEqual(['bulk-0000']);
    expect(await page.locator('#page-number').textContent()).toBe('Page 1');
    expect(new URL(page.url()).search).toBe('?project=bulk&q=BULK-0000');
  });
});
