import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { formatLogCursor } from '../../cursors.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatCount, formatDuration } from '../format.ts';

/** `headway rebuild [projection]`: refolds persisted projections from the log. */
export function registerRebuild(program: Command): void {
  program
    .command('rebuild')
    .description('rebuild persisted projections (all, or the one named) from the log')
    .argument('[projection]', 'projection name (see `headway projections`)')
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, options: { json?: boolean }, command: Command) => {
      await withLedger(command, async (ledger) => {
        const started = performance.now();
        const built = await ledger.rebuild(name);
        const elapsedMs = performance.now() - started;
        const rebuilt = built.map((generation) => ({
          name: generation.projection,
          generation: generation.generation,
          codeVersion: generation.codeVersion,
          events: generation.events,
          cursor: formatLogCursor(generation.cursor),
        }));
        if (options.json) return printJson({ rebuilt, elapsedMs: Math.round(elapsedMs) });
        printLines([
          ...rebuilt.map(
            (row) =>
              `Rebuilt ${row.name}: generation ${row.generation} (code v${row.codeVersion}), ${formatCount(row.events)} events, checkpoint ${row.cursor}.`,
          ),
          `Took ${formatDuration(elapsedMs)}.`,
        ]);
      });
    });
}
