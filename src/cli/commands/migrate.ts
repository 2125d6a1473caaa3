import type { Command } from 'commander';
import { printLines, withLedger } from '../context.ts';

/** `headway migrate`: brings the schema up to date (opening a ledger does it too). */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('bring the database schema up to date')
    .action(async (_options: unknown, command: Command) => {
      await withLedger(command, (ledger) => {
        printLines([
          `Schema is up to date (${ledger.location.store}: ${ledger.location.description}).`,
        ]);
        return Promise.resolve();
      });
    });
}
