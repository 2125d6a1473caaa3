import type { Command } from 'commander';
import { projectionRow } from '../../persisted/projection-admin.ts';
import type { ProjectionRow } from '../../persisted/projection-admin.ts';
import type { ReplicationStatus } from '../../store/replica.ts';
import { printJson, printLines } from '../context.ts';
import { formatCount, formatTable } from '../format.ts';
import { addServerOptions, withSource } from '../remote.ts';

/**
 * `headway projections`: each persisted projection's generation, checkpoint and lag. A
 * read: from a server it is that server's answer, whose runners keep them current.
 */
export function registerProjections(program: Command): void {
  addServerOptions(
    program
      .command('projections')
      .description('the persisted projections: generation, checkpoint and lag behind the log')
      .option(
        '--no-catch-up',
        'show them as stored, without folding the events they lack first (a server keeps them current)',
      )
      .option('--json', 'print JSON'),
  ).action(async (options: { catchUp: boolean; json?: boolean }, command: Command) => {
    const { rows, replica } = await withSource(command, async (source) => {
      if (source.kind === 'server') {
        const [rows, replica] = await Promise.all([
          source.client.projections(),
          source.client.replication(),
        ]);
        return { rows, replica };
      }
      const { ledger } = source;
      // A no-op when a runner elsewhere holds the lock: then the lag shown is its own.
      if (options.catchUp) await ledger.catchUpProjections();
      const rows: ProjectionRow[] = (await ledger.projectionStatus()).map(projectionRow);
      return { rows, replica: await ledger.replication() };
    });
    if (options.json) return printJson(rows);
    printLines(
      formatTable(
        ['PROJECTION', 'CODE', 'GENERATION', 'STATUS', 'CHECKPOINT', 'EVENTS', 'LAG', 'UPDATED'],
        rows.map((row) => [
          row.name,
          `v${row.codeVersion}`,
          row.generation === null ? '–' : String(row.generation),
          row.status,
          row.cursor ?? '–',
          formatCount(row.events),
          `${formatCount(row.lag)}${row.lagCapped ? '+' : ''}`,
          row.updatedAt?.replace('T', ' ').slice(0, 19) ?? '–',
        ]),
      ),
    );
    if (replica) printLines([replicaLine(replica)]);
  });
}

/** The replica's lag in one line, below the projections (which the primary keeps). */
function replicaLine(replica: ReplicationStatus): string {
  if (!replica.inRecovery) return `read replica ${replica.replica}: not a standby (no lag)`;
  const paused = replica.replayPaused ? ', replay paused' : '';
  return `read replica ${replica.replica}: lag ${formatCount(replica.lagMs)} ms, ${formatCount(replica.lagBytes)} bytes of WAL behind${paused}`;
}
