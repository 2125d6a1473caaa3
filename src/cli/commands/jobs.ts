import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { jobStatuses } from '../../../projections/job-status.ts';
import type { JobStatus } from '../../../projections/job-status.ts';
import type { JobView } from '../../queries/job-views.ts';
import { parsePositiveInt } from '../arguments.ts';
import { printJson, printLines } from '../context.ts';
import { formatDuration, formatTable } from '../format.ts';
import { conditionNames } from '../../../schema/events.ts';
import type { ConditionName } from '../../../schema/events.ts';
import { withJobReads } from '../job-reads.ts';
import { addServerOptions } from '../remote.ts';

interface JobsOptions {
  project?: string;
  kind?: string;
  status?: JobStatus[];
  stalled?: boolean;
  condition?: ConditionName[];
  limit: number;
  json?: boolean;
}

/** A job as `headway jobs --json` prints it. */
function listing({ jobId, progress, conditions }: JobView) {
  const time = (at: number | null) => (at === null ? null : new Date(at).toISOString());
  return {
    jobId,
    name: progress.name,
    kind: progress.kind,
    project: progress.project,
    status: progress.status,
    /** The job's stream version: how many events it has. */
    events: progress.version,
    startedAt: time(progress.startedAt),
    updatedAt: time(progress.updatedAt),
    conditions,
  };
}

/** The conditions that hold, briefly: `stalled 12m 03s, late`. */
function conditionsCell(conditions: JobView['conditions'] | undefined): string {
  if (!conditions) return '';
  const parts: string[] = [];
  if (conditions.stalled) parts.push(`stalled ${formatDuration(conditions.stalled.silentMs)}`);
  if (conditions.atRisk) parts.push('at risk');
  if (conditions.late) parts.push('late');
  if (conditions.failureRate) {
    parts.push(`failing ${Math.round(conditions.failureRate.rate * 100)}%`);
  }
  return parts.join(', ');
}

/** Collects `--condition` values, repeated or comma-separated, each a known condition. */
function collectConditions(value: string, previous: ConditionName[] = []): ConditionName[] {
  const names = value.split(',').filter(Boolean);
  for (const name of names) {
    if (!(conditionNames as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(
        `expected a condition (${conditionNames.join(', ')}), received '${name}'`,
      );
    }
  }
  return [...previous, ...(names as ConditionName[])];
}

/** Collects `--status` values, repeated or comma-separated, each a known status. */
function collectStatuses(value: string, previous: JobStatus[] = []): JobStatus[] {
  const statuses = value.split(',').filter(Boolean);
  for (const status of statuses) {
    if (!(jobStatuses as readonly string[]).includes(status)) {
      throw new InvalidArgumentError(
        `expected a job status (${jobStatuses.join(', ')}), received '${status}'`,
      );
    }
  }
  return [...previous, ...(statuses as JobStatus[])];
}

/** Started most recently first, then by id. */
function byStartDescending(a: JobView, b: JobView): number {
  const started = (b.progress.startedAt ?? 0) - (a.progress.startedAt ?? 0);
  return started || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0);
}

/**
 * `headway jobs`: the jobs `GET /v1/jobs` lists (the most recently updated, filtered alike),
 * newest first.
 */
export function registerJobs(program: Command): void {
  addServerOptions(
    program
      .command('jobs')
      .description('list jobs, newest first')
      .option('--project <project>', 'only jobs of this project')
      .option('--kind <kind>', 'only jobs of this kind')
      .option(
        '--status <status>',
        'only jobs in this status (repeatable, or comma-separated)',
        collectStatuses,
      )
      .option('--stalled', 'only stalled jobs')
      .option(
        '--condition <condition>',
        `only jobs in this condition (${conditionNames.join(', ')}; repeatable, or comma-separated)`,
        collectConditions,
      )
      .option('--limit <n>', 'at most this many jobs', parsePositiveInt, 50)
      .option('--json', 'print JSON'),
  ).action(async (options: JobsOptions, command: Command) => {
    await withJobReads(command, async (reads) => {
      const views = await reads.jobs({
        limit: options.limit,
        ...(options.project === undefined ? {} : { project: options.project }),
        ...(options.kind === undefined ? {} : { kind: options.kind }),
        ...(options.status === undefined ? {} : { status: options.status }),
        ...(options.stalled ? { stalled: true } : {}),
        ...(options.condition === undefined ? {} : { condition: options.condition }),
      });
      // The jobs `GET /v1/jobs` lists (with `--limit`, the most recently updated), printed
      // newest first by their start, which reads best in a terminal.
      const jobs = views.sort(byStartDescending).map(listing);
      if (options.json) return printJson(jobs);
      if (jobs.length === 0) return printLines(['No jobs yet. Try `headway demo`.']);
      printLines(
        formatTable(
          ['JOB', 'NAME', 'KIND', 'PROJECT', 'STATUS', 'EVENTS', 'STARTED', 'CONDITIONS'],
          jobs.map((job) => [
            job.jobId,
            job.name ?? '',
            job.kind ?? '',
            job.project ?? '',
            job.status,
            String(job.events),
            job.startedAt?.replace('T', ' ').slice(0, 19) ?? '',
            conditionsCell(job.conditions),
          ]),
        ),
      );
    });
  });
}
