import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { NotFoundError } from '../../errors.ts';
import { toJson } from '../../json.ts';
import { printJson, printLines } from '../context.ts';
import { formatCount, formatTable } from '../format.ts';
import { withJobReads } from '../job-reads.ts';
import { addServerOptions } from '../remote.ts';

/** `headway failures <job>`: failures grouped by category and message; `--export` writes JSON. */
export function registerFailures(program: Command): void {
  addServerOptions(
    program
      .command('failures')
      .description("a job's failures grouped by category and message, and its retry candidates")
      .argument('<job>', 'job id')
      .option('--export <file>', 'write the failure report as JSON to a file')
      .option('--json', 'print JSON'),
  ).action(
    async (jobId: string, options: { export?: string; json?: boolean }, command: Command) => {
      await withJobReads(command, async (reads) => {
        // The report `GET /v1/jobs/:id/failures?format=export` answers.
        const report = await reads.failures(jobId);
        if (!report) throw new NotFoundError(`Job '${jobId}'`);
        if (options.export) {
          await writeFile(options.export, `${toJson(report, 2)}\n`);
        }
        if (options.json) return printJson(report);
        const lines =
          report.groups.length === 0
            ? ['No failures.']
            : formatTable(
                ['CATEGORY', 'COUNT', 'MESSAGE'],
                report.groups.map((group) => [group.category, formatCount(group.count), group.key]),
              );
        lines.push(`${formatCount(report.retryCandidates.length)} retry candidates.`);
        if (options.export) lines.push(`Wrote ${options.export}.`);
        printLines(lines);
      });
    },
  );
}
