import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { InvalidInputError } from '../../errors.ts';
import { toJson } from '../../json.ts';
import { withLedger } from '../context.ts';
import { toExportLine } from '../../append/ndjson.ts';

/** `headway export <job|--all>`: events as NDJSON, one per line, in log order. */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write events as NDJSON (to stdout, or --output)')
    .argument('[job]', 'job id')
    .option('--all', 'every job')
    .option('--output <file>', 'write to this file')
    .action(
      async (
        job: string | undefined,
        options: { all?: boolean; output?: string },
        command: Command,
      ) => {
        if ((job === undefined) === (options.all !== true)) {
          throw new InvalidInputError([
            {
              path: 'job',
              message:
                'expected a job id or --all (one of them), received ' + (job ? 'both' : 'neither'),
            },
          ]);
        }
        await withLedger(command, async (ledger) => {
          const out: Writable = options.output ? createWriteStream(options.output) : process.stdout;
          const write = async (line: string) => {
            if (!out.write(line)) await once(out, 'drain');
          };
          if (job !== undefined) {
            let fromVersion = 1;
            for (;;) {
              const events = await ledger.readStream(job, { fromVersion });
              for (const event of events) await write(`${toJson(toExportLine(event))}\n`);
              if (events.length < 10_000) break;
              fromVersion = events.at(-1)!.version + 1;
            }
          } else {
            for await (const page of ledger.readAllBatches()) {
              for (const event of page.events) await write(`${toJson(toExportLine(event))}\n`);
            }
          }
          if (options.output) {
            out.end();
            await once(out, 'finish');
          }
        });
      },
    );
}
