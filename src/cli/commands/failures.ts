import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { exportFailures, jobFailures } from '../../../projections/job-failures.ts';
import { toJson } from '../../json.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatCount, formatTable } from '../format.ts';

/** `headway failures <job>`: failures grouped by category and message; `--export` writes JSON. */
export function registerFailures(program: Command): void {
  program
    .command('failures')
    .description("a job's failures grouped by category and message, and its retry candidates")
    .argument('<job>', 'job id')
    .option('--export <file>', 'write the failure report as JSON to a file')
    .option('--json', 'print JSON')
    .action(
      async (jobId: string, options: { export?: string; json?: boolean }, command: Command) => {
        await withLedger(command, async (ledger) => {
          const state = await ledger.project(jobId, jobFailures);
          const report = exportFailures(state, jobId, new Date().toISOString());
          if (options.export) {
            await writeFile(options.export, `${toJson(report, 2)}\n`);
          }
          if (options.json) return printJson(report);
          const lines =
            report.groups.length === 0
              ? ['No failures.']
              : formatTable(
                  ['CATEGORY', 'COUNT', 'MESSAGE'],
                  report.groups.map((group) => [
                    group.category,
                    formatCount(group.count),
                    group.key,
                  ]),
                );
          lines.push(`${formatCount(report.retryCandidates.length)} retry candidates.`);
          if (options.export) lines.push(`Wrote ${options.export}.`);
          printLines(lines);
        });
      },
    );
}
