import { Option } from 'commander';
import type { Command } from 'commander';
import { describeEvent } from '../../../projections/job-timeline.ts';
import { NotFoundError } from '../../errors.ts';
import { collect, parsePositiveInt, parseTimestamp } from '../arguments.ts';
import { printJson, printLines } from '../context.ts';
import { withJobReads } from '../job-reads.ts';
import { addServerOptions } from '../remote.ts';

interface TimelineOptions {
  type?: string[];
  since?: string;
  until?: string;
  text?: string;
  limit: number;
  order: 'asc' | 'desc';
  cursor?: string;
  json?: boolean;
}

/** `headway timeline [job]`: one job's events, or every job's, filtered and paged. */
export function registerTimeline(program: Command): void {
  addServerOptions(
    program
      .command('timeline')
      .description("a job's events in order (all jobs when no job is given)")
      .argument('[job]', 'job id')
      .option('--type <type>', 'only this event type (repeatable)', collect)
      .option('--since <time>', 'events at or after this time', parseTimestamp)
      .option('--until <time>', 'events before this time', parseTimestamp)
      .option('--text <text>', 'text in messages and errors')
      .option('--limit <n>', 'events per page', parsePositiveInt, 100)
      .addOption(
        new Option('--order <order>', 'oldest or newest first')
          .choices(['asc', 'desc'])
          .default('asc'),
      )
      .option('--cursor <cursor>', 'continue from a previous page')
      .option('--json', 'print JSON'),
  ).action(async (job: string | undefined, options: TimelineOptions, command: Command) => {
    await withJobReads(command, async (reads) => {
      const page = await reads.timeline({
        ...(job === undefined ? {} : { jobId: job }),
        ...(options.type ? { types: options.type } : {}),
        ...(options.since ? { since: options.since } : {}),
        ...(options.until ? { until: options.until } : {}),
        ...(options.text ? { text: options.text } : {}),
        ...(options.cursor ? { cursor: options.cursor } : {}),
        limit: options.limit,
        order: options.order,
      });
      if (!page) throw new NotFoundError(`Job '${job}'`);
      if (options.json) return printJson(page);
      const lines = page.events.map((event) => {
        const at = event.occurredAt.toISOString().replace('T', ' ').slice(0, 23);
        const who = job === undefined ? `${event.streamId} ` : '';
        return `${at}  ${who}#${event.version}  ${describeEvent(event)}`;
      });
      if (lines.length === 0) lines.push('No events match.');
      if (page.nextCursor) lines.push(`… more: add --cursor ${page.nextCursor}`);
      printLines(lines);
    });
  });
}
