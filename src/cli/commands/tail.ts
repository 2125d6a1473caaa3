import { once } from 'node:events';
import { Option } from 'commander';
import type { Command } from 'commander';
import type { RecordedEvent } from '../../../schema/recorded-event.ts';
import { describeEvent } from '../../../projections/job-timeline.ts';
import { formatLogCursor, logStart } from '../../cursors.ts';
import { toExportLine } from '../../append/ndjson.ts';
import { recordedEventOf } from '../../client/index.ts';
import type { HeadwayClient } from '../../client/index.ts';
import { collect, parseCursorOption } from '../arguments.ts';
import { toJson } from '../../json.ts';
import { abortOnSignals } from '../context.ts';
import { addServerOptions, withSource } from '../remote.ts';

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
  addServerOptions(
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
      .option('--json', 'print NDJSON, one event per line with its cursor'),
  ).action(async (options: TailOptions, command: Command) => {
    const format = options.json ? jsonLine : humanLine;
    await withSource(command, async (source) => {
      if (source.kind === 'server') {
        const { client } = source;
        // One plain request first: a wrong URL or token fails at once, where the stream
        // would retry it as a dropped connection.
        await client.jobs({ limit: 1 });
        return printEvents(format, (signal) => remoteEvents(client, options, signal));
      }
      const { ledger } = source;
      // Taken before the follow starts, so nothing committed after this point is missed.
      const after = options.fromStart
        ? logStart
        : options.after !== undefined
          ? options.after
          : await ledger.liveCursor();
      await printEvents(format, async function* (signal) {
        const pages = ledger.follow(
          {
            after,
            ...(options.job ? { streamIds: options.job } : {}),
            ...(options.type ? { types: options.type } : {}),
            ...(options.project === undefined ? {} : { projects: [options.project] }),
          },
          signal,
        );
        for await (const page of pages) yield* page.events;
      });
    });
  });
}

/** A server's events, across dropped connections; the server picks the live cursor. */
async function* remoteEvents(
  client: HeadwayClient,
  options: TailOptions,
  signal: AbortSignal,
): AsyncGenerator<RecordedEvent> {
  const after = options.fromStart ? formatLogCursor(logStart) : options.after;
  for await (const message of client.events({
    ...(options.project === undefined ? {} : { project: options.project }),
    ...(options.type ? { types: options.type } : {}),
    ...(options.job ? { jobs: options.job } : {}),
    ...(after === undefined ? {} : { after }),
    signal,
  })) {
    if (message.event === 'event') yield recordedEventOf(message.data);
  }
}

/**
 * Prints events until Ctrl-C or a closed pipe (`| head`), which end the tail cleanly;
 * other write errors fail it. A slow reader slows the reads.
 */
async function printEvents(
  format: (event: RecordedEvent) => string,
  events: (signal: AbortSignal) => AsyncIterable<RecordedEvent>,
): Promise<void> {
  const stop = abortOnSignals();
  const failed: { error?: Error } = {};
  const onError = (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') failed.error = error;
    stop.abort();
  };
  process.stdout.on('error', onError);
  try {
    for await (const event of events(stop.signal)) {
      if (stop.signal.aborted) break;
      await writeWithBackpressure(format(event), stop.signal);
    }
  } finally {
    process.stdout.off('error', onError);
    stop.dispose();
  }
  if (failed.error) throw failed.error;
}

/** One NDJSON line: the export envelope plus the cursor to resume after it. */
function jsonLine(event: RecordedEvent): string {
  return `${toJson({ cursor: formatLogCursor(event), ...toExportLine(event) })}\n`;
}

/** One human line: when it was recorded, its cursor, its job and what it says. */
function humanLine(event: RecordedEvent): string {
  const at = event.recordedAt.toISOString().replace('T', ' ').slice(0, 23);
  return `${at}  ${formatLogCursor(event)}  ${event.streamId}  ${describeEvent(event)}\n`;
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
