import type { Command } from 'commander';
import { failureGroups, jobFailures, retryCandidates } from '../../../projections/job-failures.ts';
import type { JobFailuresState } from '../../../projections/job-failures.ts';
import { formatSummary, jobSummary } from '../../../projections/job-summary.ts';
import { runDemo } from '../../demo/simulated-pipeline.ts';
import type { DemoLedger, DemoRun } from '../../demo/simulated-pipeline.ts';
import { parsePositiveInt } from '../arguments.ts';
import { printJson, printLines } from '../context.ts';
import { formatCount, formatDuration, formatTable } from '../format.ts';
import { addServerOptions, withSource } from '../remote.ts';
import type { CommandSource } from '../remote.ts';

interface DemoOptions {
  items: number;
  seed?: number;
  crash: boolean;
  paceMs?: number;
  json?: boolean;
}

/** Where a demo ran: a store (as `ledger.location` says), or a server. */
interface DemoLocation {
  store: 'postgres' | 'pglite' | 'server';
  description: string;
}

/**
 * `headway demo`: a simulated pipeline that crashes halfway and resumes. Beside a running
 * `headway serve` it records through that server, so its job shows there.
 */
export function registerDemo(program: Command): void {
  addServerOptions(
    program
      .command('demo')
      .description('run a simulated 3-stage pipeline that crashes halfway and resumes')
      .option('--items <n>', 'documents to process', parsePositiveInt, 2_000)
      .option('--seed <n>', 'repeat a run exactly', parsePositiveInt)
      .option('--no-crash', 'run without the simulated crash')
      .option('--pace-ms <ms>', 'real milliseconds per batch, to watch it', parsePositiveInt)
      .option('--json', 'print the result as JSON'),
    ['read', 'append'],
  ).action(async (options: DemoOptions, command: Command) => {
    await withSource(
      command,
      async (source) => {
        const [ledger, location] = demoTarget(source);
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
        if (options.json) return printJson({ ...run, summary, location });
        printLines([
          '',
          formatSummary(summary),
          ...reportLines(run, failures),
          '',
          `Stored in ${where(location)} as job ${run.jobId}.`,
          `Next: headway status ${run.jobId} · headway timeline ${run.jobId} --type item.failed · headway failures ${run.jobId}`,
        ]);
      },
      ['read', 'append'],
    );
  });
}

/** The ledger the demo records to, and where that is. */
function demoTarget(source: CommandSource): [DemoLedger, DemoLocation] {
  if (source.kind === 'ledger') return [source.ledger, source.ledger.location];
  return [source.client, { store: 'server', description: source.url }];
}

function where(location: DemoLocation): string {
  if (location.store === 'server') return `the Headway server at ${location.description}`;
  return `${location.store === 'pglite' ? 'the embedded store at ' : ''}${location.description}`;
}

/** The run's ETA history, its crash and resume, and its failure groups. */
function reportLines(run: DemoRun, failures: JobFailuresState): string[] {
  const groups = failureGroups(failures);
  return [
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
      groups.slice(0, 8).map((group) => [group.category, formatCount(group.count), group.message]),
    ).map((line) => `  ${line}`),
    `  ${formatCount(retryCandidates(failures).length)} documents are still retry candidates.`,
  ];
}
