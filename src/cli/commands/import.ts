import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { importNdjson } from '../../append/ndjson.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatCount } from '../format.ts';

/**
 * `headway import <file>`: NDJSON from an export; importing twice writes once. An event id
 * the ledger holds with other content fails the import (exit 1), naming the ids.
 */
export function registerImport(program: Command): void {
  program
    .command('import')
    .description('append the events of an NDJSON export (- for stdin); idempotent by event id')
    .argument('<file>', 'NDJSON file, or - for stdin')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { json?: boolean }, command: Command) => {
      await withLedger(command, async (ledger) => {
        // Created only now: readline drops lines emitted before iteration starts.
        const input = file === '-' ? process.stdin : createReadStream(file);
        const lines = createInterface({ input, crlfDelay: Infinity });
        const result = await importNdjson(ledger, lines);
        if (options.json) return printJson(result);
        printLines([
          `Imported ${formatCount(result.imported)} new events of ${formatCount(result.events)} read (${formatCount(result.streams)} job${result.streams === 1 ? '' : 's'}) into ${ledger.location.description}; ${formatCount(result.alreadyPresent)} were there already.`,
        ]);
      });
    });
}
