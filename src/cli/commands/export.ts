import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import type { RecordedEvent } from '../../../schema/recorded-event.ts';
import { limits } from '../../../schema/limits.ts';
import { toExportLine } from '../../append/ndjson.ts';
import { eventsPage } from '../../client/read-calls.ts';
import { logStart } from '../../cursors.ts';
import type { LogCursor } from '../../cursors.ts';
import { InvalidInputError } from '../../errors.ts';
import { toJson } from '../../json.ts';
import type { ReadAllPage } from '../../store/log-reads.ts';
import { readAhead } from '../../store/read-ahead.ts';
import { addServerOptions, withSource } from '../remote.ts';

/**
 * What an export reads: one job's events by version, the log by log cursor. A `Ledger`
 * and a `HeadwayClient` both have these, with the same answers.
 */
interface ExportReads {
  readStream(
    jobId: string,
    options: { fromVersion: number; limit: number },
  ): Promise<RecordedEvent[]>;
  readAll(options: { after: LogCursor; limit: number }): Promise<ReadAllPage>;
}

/** `headway export <job|--all>`: events as NDJSON, one per line, in log order. */
export function registerExport(program: Command): void {
  addServerOptions(
    program
      .command('export')
      .description('write events as NDJSON (to stdout, or --output)')
      .argument('[job]', 'job id')
      .option('--all', 'every job')
      .option('--output <file>', 'write to this file'),
  ).action(
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
      await withSource(command, async (source) => {
        // Pages as large as each answers: the store's reads, the server's per request.
        const [reads, limit] =
          source.kind === 'ledger' ? [source.ledger, limits.readPage] : [source.client, eventsPage];
        await writeLines(exportedPages(reads, job, limit), options.output);
      });
    },
  );
}

/**
 * One job's events in version order, or the whole log's in log order (gap-safe), page
 * after page, the next one read while the current one is written.
 */
function exportedPages(
  reads: ExportReads,
  jobId: string | undefined,
  limit: number,
): AsyncGenerator<RecordedEvent[]> {
  if (jobId !== undefined) {
    const read = (fromVersion: number) => reads.readStream(jobId, { fromVersion, limit });
    return readAhead(
      () => read(1),
      (events) => (events.length < limit ? null : read(events.at(-1)!.version + 1)),
    );
  }
  const read = (after: LogCursor) => reads.readAll({ after, limit });
  return eventsOf(
    readAhead(
      () => read(logStart),
      (page) => (page.events.length < limit ? null : read(page.next)),
    ),
  );
}

async function* eventsOf(pages: AsyncIterable<ReadAllPage>): AsyncGenerator<RecordedEvent[]> {
  for await (const page of pages) yield page.events;
}

/** Writes each event as an export line to `output`, or to stdout without one. */
async function writeLines(
  pages: AsyncIterable<RecordedEvent[]>,
  output: string | undefined,
): Promise<void> {
  const out: Writable = output ? createWriteStream(output) : process.stdout;
  for await (const events of pages) {
    for (const event of events) {
      if (!out.write(`${toJson(toExportLine(event))}\n`)) await once(out, 'drain');
    }
  }
  if (output) {
    out.end();
    await once(out, 'finish');
  }
}
