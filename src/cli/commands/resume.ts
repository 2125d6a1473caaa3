import type { Command } from 'commander';
import { parseNonNegativeInt, parseTimestamp } from '../arguments.ts';
import { printJson, printLines } from '../context.ts';
import { formatCount } from '../format.ts';
import { addServerOptions, withSource } from '../remote.ts';

interface ResumeCommandOptions {
  leaseExpiredBefore?: string;
  defaultLeaseMs?: number;
  reason?: string;
  json?: boolean;
}

/** How many ids of each list the human output shows. */
const shownIds = 20;

/** `headway resume <job>`: releases expired leases, records the resume, and says what is left. */
export function registerResume(program: Command): void {
  addServerOptions(
    program
      .command('resume')
      .description('resume a crashed job: release expired leases and show what is left to do')
      .argument('<job>', 'job id')
      .option(
        '--lease-expired-before <time>',
        'release in-flight items whose lease ended before this time (default now)',
        parseTimestamp,
      )
      .option(
        '--default-lease-ms <ms>',
        'the lease of items started without one (default 0)',
        parseNonNegativeInt,
      )
      .option('--reason <text>', 'why the job resumes, recorded on job.resumed')
      .option('--json', 'print JSON (every id)'),
    ['append'],
  ).action(async (jobId: string, options: ResumeCommandOptions, command: Command) => {
    await withSource(
      command,
      async (source) => {
        // The same resume either way: the server runs `ledger.resume` for the client.
        const resumer = source.kind === 'ledger' ? source.ledger : source.client;
        const point = await resumer.resume(jobId, {
          ...(options.leaseExpiredBefore === undefined
            ? {}
            : { leaseExpiredBefore: new Date(options.leaseExpiredBefore) }),
          ...(options.defaultLeaseMs === undefined
            ? {}
            : { defaultLeaseMs: options.defaultLeaseMs }),
          ...(options.reason === undefined ? {} : { reason: options.reason }),
        });
        if (options.json) return printJson(point);
        const list = (title: string, ids: readonly string[]) => {
          const more =
            ids.length > shownIds ? `, … ${formatCount(ids.length - shownIds)} more` : '';
          const shown = ids.length === 0 ? '' : `: ${ids.slice(0, shownIds).join(', ')}${more}`;
          return `  ${title} ${formatCount(ids.length)}${shown}`;
        };
        printLines([
          `Resumed ${jobId} (was ${point.status}); now at version ${point.version}.`,
          point.checkpoint === null
            ? '  checkpoint: none'
            : `  checkpoint: ${JSON.stringify(point.checkpoint)}${point.checkpointNote ? ` (${point.checkpointNote})` : ''}`,
          list('pending', point.pending),
          list('expired, released', point.expired),
          list('in flight', point.inFlight),
        ]);
      },
      ['append'],
    );
  });
}
