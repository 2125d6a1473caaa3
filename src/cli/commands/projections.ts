import type { Command } from 'commander';
import { formatLogCursor } from '../../cursors.ts';
import type { ProjectionStatus } from '../../ledger.ts';
import { printJson, printLines, withLedger } from '../context.ts';
import { formatCount, formatTable } from '../format.ts';

/** One row of `headway projections`, flat and JSON-friendly. */
interface ProjectionRow {
  name: string;
  codeVersion: number;
  /** Null before the projection was ever run. */
  generation: number | null;
  status: 'building' | 'active' | 'not built';
  cursor: string | null;
  events: number;
  lag: number;
  lagCapped: boolean;
  updatedAt: string | null;
}

function toRow(status: ProjectionStatus): ProjectionRow {
  const { generation } = status;
  return {
    name: status.name,
    codeVersion: status.codeVersion,
    generation: generation?.generation ?? null,
    status: generation?.status ?? 'not built',
    cursor: generation ? formatLogCursor(generation.cursor) : null,
    events: generation?.events ?? 0,
    lag: status.lag.events,
    lagCapped: status.lag.capped,
    updatedAt: generation?.updatedAt.toISOString() ?? null,
  };
}

/** `headway projections`: each persisted projection's generation, checkpoint and lag. */
export function registerProjections(program: Command): void {
  program
    .command('projections')
    .description('the persisted projections: generation, checkpoint and lag behind the log')
    .option('--no-catch-up', 'show them as stored, without folding the events they lack first')
    .option('--json', 'print JSON')
    .action(async (options: { catchUp: boolean; json?: boolean }, command: Command) => {
      await withLedger(command, async (ledger) => {
        // A no-op when a runner elsewhere holds the lock: then the lag shown is its own.
        if (options.catchUp) await ledger.catchUpProjections();
        const rows = (await ledger.projectionStatus()).map(toRow);
        if (options.json) return printJson(rows);
        printLines(
          formatTable(
            [
              'PROJECTION',
              'CODE',
              'GENERATION',
              'STATUS',
              'CHECKPOINT',
              'EVENTS',
              'LAG',
              'UPDATED',
            ],
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
      });
    });
}
