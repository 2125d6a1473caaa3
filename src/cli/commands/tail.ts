import { once } from 'node:events';
import { Option } from 'commander';
import type { Command } from 'commander';
import type { RecordedEvent } from '../../../schema/recorded-event.ts';
import { describeEvent } from '../../../projections/job-timeline.ts';
import { formatCursor, startCursor } from '../../cursor.ts';
import { toExportLine } from '../../ndjson.ts';
import { collect, parseCursorOption } from '../arguments.ts';
import { abortOnSignals, toJson, withLedger } from '../context.ts';

interface TailOptions {
  job?: string[];
  type?: string[];
  project?: string;
  after?: string;
  fromStart?: boolean;
  json?: boolean;
}

/** `headway tail`: prints events as they are committed, until Ctrl-C. */
export function registerTail(program: Command): void {
  program
    .command('tail')
    .description('print events as they arrive, following the log until interrupted')
    .option('--job <id>', 'only this job (repeatable)', collect)
    .option('--type <type>', 'only this event type (repeatable)', collect)
    .option('--project <project>', 'only jobs of this project')
    .addOption(
      new Option('--after <cursor>', 'start after this cursor (as printed by --json)').argParser(
        parseCursorOption,
      ),
    )
    .addOption(new Option('--from-start', 'start at the beginning of the log').conflicts('after'))
    .option('--json', 'print NDJSON, one event per line with its cursor')
    .action(async (options: TailOptions, command: Command) => {
      await withLedger(command, async (ledger) => {
        // Taken before the follow starts, so nothing committed after this point is missed.
        const after = options.fromStart
          ? startCursor
          : options.after !== undefined
            ? options.after
            : await ledger.liveCursor();
        const format = options.json ? jsonLine : humanLine;
        const stop = abortOnSignals();
        // A closed pipe (`| head`) ends the tail like Ctrl-C; other write errors fail it.
        const failed: { error?: Error } = {};
        const onError = (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EPIPE') failed.error = error;
          stop.abort();
        };
        process.stdout.on('error', onError);
        try {
          const pages = ledger.follow(
            {
              after,
              ...(options.job ? { streamIds: options.job } : {}),
              ...(options.type ? { types: options.type } : {}),
              ...(options.project === undefined ? {} : { projects: [options.project] }),
            },
            stop.signal,
          );
          for await (const page of pages) {
            for (const event of page.events) {
              if (stop.signal.aborted) break;
              await writeWithBackpressure(format(event), stop.signal);
            }
            if (stop.signal.aborted) break;
          }
        } finally {
          process.stdout.off('error', onError);
          stop.dispose();
        }
        if (failed.error) throw failed.error;
      });
    });
}

/** One NDJSON line: the export envelope plus the cursor to resume after it. */
function jsonLine(event: RecordedEvent): string {
  return `${toJson({ cursor: formatCursor(event), ...toExportLine(event) })}\n`;
}

/** One human line: when it was recorded, its cursor, its job and what it says. */
function humanLine(event: RecordedEvent): string {
  const at = event.recordedAt.toISOString().replace('T', ' ').slice(0, 23);
  return `${at}  ${formatCursor(event)}  ${event.streamId}  ${describeEvent(event)}\n`;
}

/** Writes, then waits for the pipe to drain when it is full, so a slow reader slows the reads. */
async function writeWithBackpressure(text: string, signal: AbortSignal): Promise<void> {
  if (process.stdout.write(text)) return;
  try {
    await once(process.stdout, 'drain', { signal });
  } catch (error) {
    if (!signal.aborted) throw error;
  }
}
