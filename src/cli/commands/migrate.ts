import type { Command } from 'commander';
import { regrantAppRoles } from '../../store/database-roles.ts';
import { printLines, withLedger } from '../context.ts';

/**
 * `headway migrate`: brings the schema up to date (opening a ledger does it too), then
 * grants the app roles set up by `headway roles` again, new tables included.
 */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description(
      'bring the database schema up to date, and grant the app roles (headway roles) again',
    )
    .action(async (_options: unknown, command: Command) => {
      await withLedger(command, async (ledger) => {
        const roles = ledger.location.store === 'postgres' ? await regrantAppRoles(ledger.db) : [];
        printLines([
          `Schema is up to date (${ledger.location.store}: ${ledger.location.description}).`,
          ...(roles.length > 0
            ? [`Granted the app role's privileges to ${roles.join(', ')}.`]
            : []),
        ]);
      });
    });
}
