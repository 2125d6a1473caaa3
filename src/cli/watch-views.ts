import cliProgress from 'cli-progress';
import type { EtaEstimate } from '../../projections/job-eta.ts';
import type { JobConditions } from '../../projections/job-conditions.ts';
import type { JobStatus } from '../../projections/job-progress.ts';
import type { JobSnapshot } from '../queries/job-views.ts';
import { printLines } from './context.ts';
import { formatCount, formatDuration } from './format.ts';
import type { Snapshot } from './watch-snapshots.ts';
import { isFinished } from '../../projections/job-status.ts';

// How `headway watch` draws a job: bars on a terminal, plain lines elsewhere.

/** One stage as the watch shows it; percent is null while its size is unknown. */
interface StageLine {
  name: string;
  state: 'pending' | 'running' | 'done';
  /** Done here: completed, failed or skipped. */
  processed: number;
  failed: number;
  skipped: number;
  inFlight: number;
  /** Expected here and not started yet; null while the stage's size is unknown. */
  pending: number | null;
  total: number | null;
  percent: number | null;
}

/** Each stage with its own counts, in pipeline order (see `estimateEta`). */
function stageLines(progress: JobSnapshot, estimate: EtaEstimate): StageLine[] {
  return estimate.stages.map((stage) => {
    const processed = stage.completed + stage.failed + stage.skipped;
    const ended =
      stage.status === 'done' || (isFinished(progress.status) && stage.status === 'running');
    const percent =
      stage.fraction !== null
        ? Math.min(100, stage.fraction * 100)
        : // A stage of unknown size is all done once the job completes.
          progress.status === 'completed'
          ? 100
          : null;
    return {
      name: stage.name,
      state: ended ? 'done' : stage.status === 'waiting' ? 'pending' : 'running',
      processed,
      failed: stage.failed,
      skipped: stage.skipped,
      inFlight: stage.inFlight,
      pending: stage.pending,
      total: stage.total,
      percent,
    };
  });
}

/** A stage's own counts: what is done, failed, skipped, in flight and waiting there. */
function describeStageCounts(line: StageLine): string {
  const parts = [line.state, `${formatCount(line.processed - line.failed - line.skipped)} done`];
  if (line.failed > 0) parts.push(`${formatCount(line.failed)} failed`);
  if (line.skipped > 0) parts.push(`${formatCount(line.skipped)} skipped`);
  if (line.inFlight > 0) parts.push(`${formatCount(line.inFlight)} in flight`);
  if (line.pending !== null && line.pending > 0) parts.push(`${formatCount(line.pending)} pending`);
  return parts.join(' | ');
}

function describeEta(estimate: EtaEstimate, status: JobStatus): string {
  if (isFinished(status)) return 'done';
  if (estimate.etaMs === null) return 'ETA –';
  const range = estimate.range
    ? ` (${formatDuration(estimate.range.lowMs)} – ${formatDuration(estimate.range.highMs)})`
    : '';
  return `ETA ${formatDuration(estimate.etaMs)}${range}`;
}

/** The conditions that hold, loudly: ` | STALLED 12m 03s | LATE 5m 00s`; empty when none. */
export function describeConditions(conditions: JobConditions): string {
  const parts: string[] = [];
  if (conditions.stalled) parts.push(`STALLED ${formatDuration(conditions.stalled.silentMs)}`);
  if (conditions.atRisk) parts.push('AT RISK');
  if (conditions.late) parts.push(`LATE ${formatDuration(conditions.late.overdueMs)}`);
  if (conditions.failureRate) {
    parts.push(`FAILING ${Math.round(conditions.failureRate.rate * 100)}%`);
  }
  return parts.map((part) => ` | ${part}`).join('');
}

function describeRate(estimate: EtaEstimate): string {
  return estimate.ratePerSecond === null ? '– /s' : `${estimate.ratePerSecond.toFixed(1)}/s`;
}

function describeCount(processed: number, total: number | null): string {
  return `${formatCount(processed)}/${total === null ? '?' : formatCount(total)}`;
}

/** A way of drawing a watched job. */
export interface View {
  render(snapshot: Snapshot, now: number): void;
  /** Ends the display, leaving the last state on screen. */
  stop(last: Snapshot | null): void;
}

/** Plain lines for pipes and logs: one per update. */
export class LinesView implements View {
  render(snapshot: Snapshot, now: number): void {
    const { progress } = snapshot;
    const estimate = snapshot.estimate(now);
    const stage = stageLines(progress, estimate).find((line) => line.state === 'running');
    const stagePart = stage
      ? ` | stage ${stage.name} ${stage.percent === null ? formatCount(stage.processed) : `${stage.percent.toFixed(1)}%`}${stage.failed > 0 ? ` (${formatCount(stage.failed)} failed)` : ''}`
      : '';
    const at = new Date(now).toISOString().slice(11, 19);
    printLines([
      `${at} ${progress.status} ${progress.percent.toFixed(1)}% ${describeCount(progress.processed, progress.total)}${stagePart} | ${describeRate(estimate)} | ${describeEta(estimate, progress.status)} | failed ${formatCount(progress.counts.failed)}${describeConditions(snapshot.conditions(now))}`,
    ]);
  }

  stop(): void {}
}

/** Bars on a terminal: the job's, then one per stage; the ETA ticks down between updates. */
export class BarsView implements View {
  private readonly bars = new cliProgress.MultiBar(
    {
      stream: process.stdout,
      format: '{label} {bar} {pct} {count} | {detail}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      // Signals are ours to handle: Ctrl-C ends the watch and then stops the bars.
      gracefulExit: false,
    },
    cliProgress.Presets.shades_classic,
  );
  private overall: cliProgress.SingleBar | null = null;
  private readonly stages = new Map<string, cliProgress.SingleBar>();
  private last: Snapshot | null = null;
  private readonly ticker: NodeJS.Timeout;

  constructor(interval: number) {
    this.ticker = setInterval(
      () => {
        if (this.last) this.render(this.last, Date.now());
      },
      Math.max(interval, 1_000),
    );
  }

  render(snapshot: Snapshot, now: number): void {
    this.last = snapshot;
    const { progress } = snapshot;
    const estimate = snapshot.estimate(now);
    const stages = stageLines(progress, estimate);
    const width = Math.max(12, ...stages.map((line) => line.name.length + 2));
    const label = (progress.name ?? progress.jobId ?? 'job').slice(0, 40);
    const overall = {
      label: label.padEnd(width),
      pct: `${progress.percent.toFixed(1).padStart(5)}%`,
      count: describeCount(progress.processed, progress.total),
      detail: `${progress.status} | ${describeRate(estimate)} | ${describeEta(estimate, progress.status)} | failed ${formatCount(progress.counts.failed)}${describeConditions(snapshot.conditions(now))}`,
    };
    if (this.overall) this.overall.update(progress.percent, overall);
    else this.overall = this.bars.create(100, progress.percent, overall);
    for (const line of stages) {
      const payload = {
        label: `  ${line.name}`.padEnd(width),
        pct: line.percent === null ? '    –' : `${line.percent.toFixed(1).padStart(5)}%`,
        count: describeCount(line.processed, line.total),
        detail: describeStageCounts(line),
      };
      const value = line.percent ?? 0;
      const bar = this.stages.get(line.name);
      if (bar) bar.update(value, payload);
      else this.stages.set(line.name, this.bars.create(100, value, payload));
    }
  }

  stop(last: Snapshot | null): void {
    clearInterval(this.ticker);
    if (last) this.render(last, Date.now());
    this.bars.stop();
  }
}
