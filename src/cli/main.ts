import { Command, CommanderError, Option } from 'commander';
import { HeadwayError } from '../errors.ts';
import { registerDemo } from './commands/demo.ts';
import { registerExport } from './commands/export.ts';
import { registerFailures } from './commands/failures.ts';
import { registerImport } from './commands/import.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerProjections } from './commands/projections.ts';
import { registerRebuild } from './commands/rebuild.ts';
import { registerResume } from './commands/resume.ts';
import { registerRetention } from './commands/retention.ts';
import { registerRoles } from './commands/roles.ts';
import { registerServe } from './commands/serve.ts';
import { registerStatus } from './commands/status.ts';
import { registerTail } from './commands/tail.ts';
import { registerTimeline } from './commands/timeline.ts';
import { registerWatch } from './commands/watch.ts';
import { registerWebhooks } from './commands/webhooks.ts';

/** Builds the `headway` program; each command lives in `commands/`. */
export function buildProgram(): Command {
  const program = new Command('headway')
    .description('An event-sourced progress ledger for long-running jobs.')
    .addOption(
      new Option(
        '--database-url <url>',
        'PostgreSQL URL (default: $HEADWAY_DATABASE_URL, $DATABASE_URL, else the embedded store)',
      ),
    )
    .addOption(new Option('--data-dir <dir>', 'folder of the embedded store').default('.headway'))
    .addOption(
      new Option(
        '--schema <name>',
        'schema that holds the tables (created if missing; default: $HEADWAY_SCHEMA, else the search path)',
      ),
    )
    .showHelpAfterError()
    .exitOverride();
  registerDemo(program);
  registerServe(program);
  registerJobs(program);
  registerStatus(program);
  registerWatch(program);
  registerResume(program);
  registerTimeline(program);
  registerFailures(program);
  registerTail(program);
  registerExport(program);
  registerImport(program);
  registerProjections(program);
  registerRebuild(program);
  registerRetention(program);
  registerMigrate(program);
  registerRoles(program);
  registerWebhooks(program);
  return program;
}

/** Runs the CLI and returns the exit code: 0, or 1 on bad input or a failed command. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the problem already; help and version exit cleanly.
      return error.exitCode === 0 ? 0 : 1;
    }
    if (error instanceof HeadwayError) {
      process.stderr.write(`headway: ${error.message} (${error.code})\n`);
      return 1;
    }
    process.stderr.write(`headway: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
