import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { eventTypes } from '../../schema/events.ts';

/**
 * Where the dashboard's files are: its own (`src/dashboard/`, beside this folder) and the
 * browser modules it loads from installed packages. Nothing is fetched from elsewhere.
 */

/** The folder of the dashboard's own files, `src/dashboard/`. */
export const dashboardRoot = fileURLToPath(new URL('../dashboard/', import.meta.url));

const require = createRequire(import.meta.url);

/** The folder of an installed package: the one above its entry named after it. */
function packageRoot(name: string): string {
  const entry = require.resolve(name);
  const marker = `${sep}node_modules${sep}${name}${sep}`;
  const at = entry.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot find the folder of ${name} in ${entry}`);
  return entry.slice(0, at + marker.length);
}

/** The browser modules the dashboard loads, by the name it loads them under. */
export const vendored: ReadonlyMap<string, string> = new Map([
  ['eventsource-parser', dirname(require.resolve('eventsource-parser'))],
  ['lit-html', packageRoot('lit-html')],
  ['uplot', join(packageRoot('uplot'), 'dist')],
]);

/** The event catalogue's types as a module, for the timeline's filter, from the one definition. */
export const catalogueModule = `export const eventTypes = ${JSON.stringify(eventTypes)};\n`;
