import type { Command } from 'commander';
import { failureGroups, jobFailures, retryCandidates } from '../../../projections/job-failures.ts';
import { formatSummary, jobSummary } from '../../../projections/job-summary.ts';
import { runDemo } from '../../demo/simulated-pipeline.ts';
import { parsePositiveInt } from '../arguments.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatCount, formatDuration, formatTable } from '../format.ts';

interface DemoOptions {
  items: number;
  seed?: number;
  crash: boolean;
  paceMs?: number;
  json?: boolean;
}

/** `headway demo`: a simulated pipeline that crashes halfway and resumes. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a simulated 3-stage pipeline that crashes halfway and resumes')
    .option('--items <n>', 'documents to process', parsePositiveInt, 2_000)
    .option('--seed <n>', 'repeat a run exactly', parsePositiveInt)
    .option('--no-crash', 'run without the simulated crash')
    .option('--pace-ms <ms>', 'real milliseconds per batch, to watch it', parsePositiveInt)
    .option('--json', 'print the result as JSON')
    .action(async (options: DemoOptions, command: Command) => {
      await withLedger(command, async (ledger) => {
        const print = options.json ? () => undefined : (line: string) => printLines([line]);
        const run = await runDemo(ledger, {
          items: options.items,
          crash: options.crash,
          print,
          ...(options.seed === undefined ? {} : { seed: options.seed }),
          ...(options.paceMs === undefined ? {} : { paceMs: options.paceMs }),
        });
        const summary = await ledger.project(run.jobId, jobSummary);
        const failures = await ledger.project(run.jobId, jobFailures);
        if (options.json) return printJson({ ...run, summary, location: ledger.location });
        const groups = failureGroups(failures);
        printLines([
          '',
          formatSummary(summary),
          '',
          'ETA as the run went:',
          ...formatTable(
            ['DONE', 'PROCESSED', 'RATE', 'ETA', 'RANGE'],
            run.etaHistory.map((sample) => [
              `${sample.percent.toFixed(0)}%`,
              formatCount(sample.processed),
              sample.rate === null ? '–' : `${sample.rate.toFixed(1)}/s`,
              formatDuration(sample.etaMs),
              sample.lowMs === null
                ? '–'
                : `${formatDuration(sample.lowMs)} – ${formatDuration(sample.highMs)}`,
            ]),
          ).map((line) => `  ${line}`),
          '',
          `Crash after ${formatCount(run.crashedAfter ?? 0)} documents; resumed from checkpoint ${JSON.stringify(run.resumedFrom)}, releasing ${run.released.length} in-flight documents.`,
          '',
          'Failure groups:',
          ...formatTable(
            ['CATEGORY', 'COUNT', 'MESSAGE'],
            groups
              .slice(0, 8)
              .map((group) => [group.category, formatCount(group.count), group.message]),
          ).map((line) => `  ${line}`),
          `  ${formatCount(retryCandidates(failures).length)} documents are still retry candidates.`,
          '',
          `Stored in ${ledger.location.store === 'pglite' ? 'the embedded store at ' : ''}${ledger.location.description} as job ${run.jobId}.`,
          `Next: headway status ${run.jobId} · headway timeline ${run.jobId} --type item.failed · headway failures ${run.jobId}`,
        ]);
      });
    });
}
