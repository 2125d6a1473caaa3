import type { Command } from 'commander';
import {
  currentSchema,
  ensureRoles,
  grantAppRole,
  transferOwnership,
} from '../../store/database-roles.ts';
import { HeadwayError } from '../../errors.ts';
import { printJson, printLines, resolveDatabaseUrl, withLedger } from '../context.ts';

interface RolesOptions {
  owner: string;
  app: string;
  ownerPassword?: string;
  appPassword?: string;
  json?: boolean;
}

/**
 * `headway roles --owner <name> --app <name>`: sets up the two PostgreSQL roles (docs/architecture.md, "The log")
 * as a superuser, and can be run again: creates the roles if missing, migrates, makes the
 * owner own the ledger's tables and functions, and grants the app role what it needs.
 */
export function registerRoles(program: Command): void {
  program
    .command('roles')
    .description(
      'PostgreSQL: create an owner role (migrates) and an app role (reads, appends through headway_append) and grant them; run as a superuser, again at will',
    )
    .requiredOption('--owner <name>', 'role that owns the tables and runs headway migrate')
    .requiredOption('--app <name>', 'role that serves: headway serve, the library, the SDK server')
    .option('--owner-password <password>', "owner's password (default: $HEADWAY_OWNER_PASSWORD)")
    .option('--app-password <password>', "app role's password (default: $HEADWAY_APP_PASSWORD)")
    .option('--json', 'print JSON')
    .action(async (options: RolesOptions, command: Command) => {
      if (resolveDatabaseUrl(command.optsWithGlobals<{ databaseUrl?: string }>()) === undefined) {
        throw new HeadwayError(
          'invalid_input',
          'headway roles: expected a PostgreSQL database (--database-url or DATABASE_URL), received none; the embedded store has a single user, and its triggers alone guard the log',
        );
      }
      const ownerPassword = options.ownerPassword ?? process.env.HEADWAY_OWNER_PASSWORD;
      const appPassword = options.appPassword ?? process.env.HEADWAY_APP_PASSWORD;
      await withLedger(command, async (ledger) => {
        await ensureRoles(ledger.db, {
          owner: options.owner,
          app: options.app,
          ...(ownerPassword ? { ownerPassword } : {}),
          ...(appPassword ? { appPassword } : {}),
        });
        await transferOwnership(ledger.db, options.owner);
        await grantAppRole(ledger.db, options.app);
        const schema = await currentSchema(ledger.db);
        if (options.json) return printJson({ schema, owner: options.owner, app: options.app });
        printLines([
          `Roles of the ledger in schema ${schema} (${ledger.location.description}):`,
          `  owner ${options.owner}: owns its tables and functions; run headway migrate as it.`,
          `  app   ${options.app}: reads, appends through headway_append, keeps the projections; run headway serve as it.`,
        ]);
      });
    });
}
