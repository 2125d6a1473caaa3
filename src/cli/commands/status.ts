import type { Command } from 'commander';
import type { JobConditions } from '../../../projections/job-conditions.ts';
import { formatSummary } from '../../../projections/job-summary.ts';
import { NotFoundError } from '../../errors.ts';
import { printJson, printLines } from '../context.ts';
import { formatCount, formatDuration, progressBar } from '../format.ts';
import { withJobReads } from '../job-reads.ts';
import type { StatusReport } from '../job-reads.ts';
import { addServerOptions } from '../remote.ts';

/** `headway status <job>`: where a job stands, its stages, counts and ETA. */
export function registerStatus(program: Command): void {
  addServerOptions(
    program
      .command('status')
      .description("a job's progress, stages, counts and ETA")
      .argument('<job>', 'job id')
      .option('--json', 'print JSON'),
  ).action(async (jobId: string, options: { json?: boolean }, command: Command) => {
    await withJobReads(command, async (reads) => {
      // The job's status as `GET /v1/jobs/:id` answers it, and its summary beside it.
      const report = await reads.status(jobId);
      if (!report) throw new NotFoundError(`Job '${jobId}'`);
      if (options.json) return printJson(report);
      printLines(statusLines(jobId, report));
    });
  });
}

/** The human lines of a job's status. */
function statusLines(jobId: string, report: StatusReport): string[] {
  const { progress, summary, eta: estimate } = report;
  const lines = [
    `${progress.name ?? jobId} (${progress.kind ?? '?'}, project ${progress.project ?? '?'}): ${progress.status}`,
    `  ${progressBar(progress.percent)} ${progress.percent.toFixed(1)}%  ${formatCount(progress.processed)} of ${progress.total === null ? '?' : formatCount(progress.total)}`,
    `  completed ${formatCount(progress.counts.completed)}, failed ${formatCount(progress.counts.failed)}, skipped ${formatCount(progress.counts.skipped)}, in flight ${formatCount(progress.counts.inFlight)}, pending ${formatCount(progress.counts.pending)}`,
  ];
  if (estimate.stages.length > 0) {
    lines.push('  stages:');
    for (const stage of estimate.stages) {
      const run = progress.stages.findLast((candidate) => candidate.name === stage.name);
      const done = stage.completed + stage.failed + stage.skipped;
      const counts = [
        `${formatCount(done)} of ${stage.total === null ? '?' : formatCount(stage.total)}`,
        `failed ${formatCount(stage.failed)}`,
        `skipped ${formatCount(stage.skipped)}`,
        `in flight ${formatCount(stage.inFlight)}`,
        `pending ${stage.pending === null ? '?' : formatCount(stage.pending)}`,
      ];
      const time = run?.durationMs != null ? formatDuration(run.durationMs) : stage.status;
      const eta =
        stage.basis === 'done' || stage.etaMs === null || progress.endedAt !== null
          ? ''
          : `  ETA ${formatDuration(stage.etaMs)} (${stage.basis})`;
      lines.push(`    ${stage.name.padEnd(16)} ${time.padEnd(8)} ${counts.join(', ')}${eta}`);
    }
  }
  if (progress.status === 'running' || progress.status === 'paused') {
    const rate =
      estimate.ratePerSecond === null
        ? 'no rate yet'
        : `${estimate.ratePerSecond.toFixed(1)} items/s`;
    const range = estimate.range
      ? ` (${formatDuration(estimate.range.lowMs)} – ${formatDuration(estimate.range.highMs)})`
      : '';
    lines.push(`  ETA ${formatDuration(estimate.etaMs)}${range} at ${rate}`);
  }
  lines.push(...conditionLines(report.conditions));
  if (progress.message) lines.push(`  message: ${progress.message}`);
  if (progress.lastCheckpoint)
    lines.push(`  last checkpoint: ${JSON.stringify(progress.lastCheckpoint.cursor)}`);
  lines.push(`  ${formatSummary(summary)}`);
  if (report.archived) {
    const { archivedAt, file } = report.archived;
    lines.push(
      `  archived ${archivedAt.replace('T', ' ').slice(0, 19)}: its events are in ${file}`,
    );
  }
  return lines;
}

/** One line per condition that holds: stalled, at risk, late, failing. */
function conditionLines(conditions: JobConditions | undefined): string[] {
  if (!conditions) return [];
  const lines: string[] = [];
  const { stalled, atRisk, late, failureRate } = conditions;
  if (stalled) {
    lines.push(
      `  STALLED: no event for ${formatDuration(stalled.silentMs)} (threshold ${formatDuration(stalled.thresholdMs)}, ${stalled.basis})`,
    );
  }
  if (atRisk) {
    lines.push(
      `  AT RISK: may finish by ${new Date(atRisk.expectedBy).toISOString()}, after its deadline ${new Date(atRisk.deadline).toISOString()}`,
    );
  }
  if (late) {
    lines.push(
      `  LATE: its deadline ${new Date(late.deadline).toISOString()} passed ${formatDuration(late.overdueMs)} ago`,
    );
  }
  if (failureRate) {
    const percent = (rate: number) => `${Math.round(rate * 100)}%`;
    lines.push(
      `  FAILING: ${percent(failureRate.rate)} of recent outcomes failed (threshold ${percent(failureRate.threshold)}, ${failureRate.basis})`,
    );
  }
  return lines;
}
