import { existsSync } from 'node:fs';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

/** Debian's Chromium (`apt-get install -y chromium`); no browser is ever downloaded. */
export const chromiumPath = '/usr/bin/chromium';

/** True when the browser the tests and the benchmark drive is installed. */
export const hasChromium = () => existsSync(chromiumPath);

/** Headless Chromium with the flags this machine needs (no sandbox, no GPU, no network). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
}
