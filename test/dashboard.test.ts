import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ledger } from '../src/ledger.ts';
import { openLedger } from '../src/open-ledger.ts';
import { parseTokens } from '../src/server/auth.ts';
import { createServer } from '../src/server/server.ts';

const chromiumPath = '/usr/bin/chromium';
const artifacts = new URL('./artifacts/', import.meta.url).pathname;
const token = 'dashboard-token-0123456789';

if (!existsSync(chromiumPath)) {
  if (process.env.CI === 'true') {
    throw new Error(`CI=true requires Chromium at ${chromiumPath} (apt-get install -y chromium)`);
  }
  console.warn(`\n*** SKIPPING the browser tests: no Chromium at ${chromiumPath}.\n`);
}

describe.skipIf(!existsSync(chromiumPath))('dashboard in headless Chromium', () => {
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
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
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
    } finally {
      await phone.close();
    }
  });
});
