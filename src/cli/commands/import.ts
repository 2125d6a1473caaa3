import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { importNdjson, importNdjsonWith } from '../../append/ndjson.ts';
import { printJson, printLines } from '../context.ts';
import { formatCount } from '../format.ts';
import { addServerOptions, withSource } from '../remote.ts';
import { serverImportWriter } from '../server-import.ts';

/**
 * `headway import <file>`: NDJSON from an export; importing twice writes once. An event id
 * the ledger holds with other content fails the import (exit 1), naming the ids. Beside a
 * running `headway serve` it appends through that server, with the same counts.
 */
export function registerImport(program: Command): void {
  addServerOptions(
    program
      .command('import')
      .description('append the events of an NDJSON export (- for stdin); idempotent by event id')
      .argument('<file>', 'NDJSON file, or - for stdin')
      .option('--json', 'print JSON'),
    ['read', 'append'],
  ).action(async (file: string, options: { json?: boolean }, command: Command) => {
    await withSource(
      command,
      async (source) => {
        // Created only now: readline drops lines emitted before iteration starts.
        const input = file === '-' ? process.stdin : createReadStream(file);
        const lines = createInterface({ input, crlfDelay: Infinity });
        const result =
          source.kind === 'ledger'
            ? await importNdjson(source.ledger, lines)
            : await importNdjsonWith(serverImportWriter(source.client), lines);
        if (options.json) return printJson(result);
        const target =
          source.kind === 'ledger'
            ? source.ledger.location.description
            : `the Headway server at ${source.url}`;
        printLines([
          `Imported ${formatCount(result.imported)} new events of ${formatCount(result.events)} read (${formatCount(result.streams)} job${result.streams === 1 ? '' : 's'}) into ${target}; ${formatCount(result.alreadyPresent)} were there already.`,
        ]);
      },
      ['read', 'append'],
    );
  });
}
