import type { Command } from 'commander';
import { parsePositiveInt } from '../arguments.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatTable } from '../format.ts';

/** `headway jobs`: the jobs in the ledger, newest first. */
export function registerJobs(program: Command): void {
  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('--project <project>', 'only jobs of this project')
    .option('--limit <n>', 'at most this many jobs', parsePositiveInt, 50)
    .option('--json', 'print JSON')
    .action(
      async (options: { project?: string; limit: number; json?: boolean }, command: Command) => {
        await withLedger(command, async (ledger) => {
          const jobs = await ledger.listJobs({
            limit: options.limit,
            ...(options.project === undefined ? {} : { project: options.project }),
          });
          if (options.json) return printJson(jobs);
          if (jobs.length === 0) return printLines(['No jobs yet. Try `headway demo`.']);
          printLines(
            formatTable(
              ['JOB', 'NAME', 'KIND', 'PROJECT', 'STATUS', 'EVENTS', 'STARTED'],
              jobs.map((job) => [
                job.jobId,
                job.name ?? '',
                job.kind ?? '',
                job.project ?? '',
                job.status,
                String(job.events),
                job.startedAt?.toISOString().replace('T', ' ').slice(0, 19) ?? '',
              ]),
            ),
          );
        });
      },
    );
}
