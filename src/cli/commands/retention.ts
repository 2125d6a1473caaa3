import type { Command } from 'commander';
import type { RetentionResult } from '../../retention/run-retention.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatCount } from '../format.ts';

/**
 * `headway retention --older-than 90d`: archives the months of finished jobs older than
 * that to NDJSON files, then drops them from the log; `--dry-run` prints the plan only.
 */
export function registerRetention(program: Command): void {
  program
    .command('retention')
    .description('archive finished jobs older than an age to NDJSON, then drop their months')
    .requiredOption('--older-than <age>', 'how long ago jobs must have finished: 90d, 12h, 30m')
    .option('--archive-dir <dir>', 'where archives are written', 'headway-archives')
    .option('--dry-run', 'print the plan and change nothing')
    .option('--json', 'print JSON')
    .action(
      async (
        options: { olderThan: string; archiveDir: string; dryRun?: boolean; json?: boolean },
        command: Command,
      ) => {
        await withLedger(command, async (ledger) => {
          const result = await ledger.retention({
            olderThan: options.olderThan,
            archiveDir: options.archiveDir,
            dryRun: options.dryRun === true,
          });
          if (options.json) return printJson(result);
          printLines(retentionLines(result));
        });
      },
    );
}

/** The human lines of a retention plan or run. */
function retentionLines(result: RetentionResult): string[] {
  const verb = result.dryRun ? 'Would archive' : 'Archived';
  const lines = [
    `${result.dryRun ? 'Dry run: ' : ''}jobs finished before ${result.cutoff} (${result.now} minus ${formatCount(result.olderThanMs)} ms); archives in ${result.archiveDir}`,
  ];
  for (const partition of result.partitions) {
    const size = `${formatCount(partition.events)} events, ${formatCount(partition.jobs.length)} job${partition.jobs.length === 1 ? '' : 's'}`;
    if (partition.action === 'keep') {
      lines.push(`  ${partition.partition}: kept (${size}): ${partition.heldBack.join('; ')}`);
    } else if (partition.action === 'drop') {
      lines.push(`  ${partition.partition}: ${result.dryRun ? 'would drop' : 'dropped'} (empty)`);
    } else {
      const archive = partition.archive
        ? ` to ${partition.archive.file} (sha256 ${partition.archive.sha256})`
        : '';
      lines.push(`  ${partition.partition}: ${verb.toLowerCase()} ${size}${archive}`);
    }
  }
  for (const { month, events } of result.defaultPartition) {
    lines.push(`  events_default: ${formatCount(events)} events of ${month}, never dropped`);
  }
  lines.push(
    `${verb} ${formatCount(result.archivedJobs)} jobs, ${formatCount(result.archivedEvents)} events.`,
  );
  return lines;
}
