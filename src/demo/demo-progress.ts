import { setTimeout as sleep } from 'node:timers/promises';
import { combineProjections } from '../../projections/combine.ts';
import { estimateEta, jobEta } from '../../projections/job-eta.ts';
import { jobProgress } from '../../projections/job-progress.ts';
import type { Projection } from '../../projections/projection.ts';
import type { SimulatedClock } from './simulated-work.ts';

/** A sample of the ETA as the run went. */
export interface EtaSample {
  percent: number;
  processed: number;
  rate: number | null;
  etaMs: number | null;
  lowMs: number | null;
  highMs: number | null;
}

/** What reading the demo's job takes: a job folded through a projection, as it stands. */
export interface JobProjector {
  project<S>(jobId: string, projection: Projection<S>): Promise<S>;
}

/** How the demo shows its progress. */
export interface ProgressReporterOptions {
  print: (line: string) => void;
  /** Real milliseconds to wait after each line, so a person can watch. */
  paceMs?: number | undefined;
  /** Where each reported ETA is kept. */
  history: EtaSample[];
}

/**
 * Prints a progress line with the ETA at each new tenth of the job, as the ledger folds
 * it from what was recorded, and keeps the ETA samples for the run's report.
 */
export class ProgressReporter {
  // One projection object, so each read folds only what was appended since the last.
  private readonly progressAndEta = combineProjections({ progress: jobProgress, eta: jobEta });
  private nextReport = 0;

  constructor(
    private readonly ledger: JobProjector,
    private readonly jobId: string,
    private readonly clock: SimulatedClock,
    private readonly options: ProgressReporterOptions,
  ) {}

  /** Items done so far, as the ledger has them. */
  async processed(): Promise<number> {
    const { progress } = await this.ledger.project(this.jobId, this.progressAndEta);
    return progress.processed;
  }

  /** Reports when the job has passed the next tenth, or at once with `force`. */
  async report(force = false): Promise<void> {
    const { progress, eta } = await this.ledger.project(this.jobId, this.progressAndEta);
    if (!force && progress.percent < this.nextReport) return;
    this.nextReport = Math.floor(progress.percent / 10) * 10 + 10;
    const estimate = estimateEta(eta, this.clock.now);
    this.options.history.push({
      percent: progress.percent,
      processed: progress.processed,
      rate: estimate.ratePerSecond,
      etaMs: estimate.etaMs,
      lowMs: estimate.range?.lowMs ?? null,
      highMs: estimate.range?.highMs ?? null,
    });
    this.options.print(describeProgress(progress, estimate));
    if (this.options.paceMs) await sleep(this.options.paceMs);
  }
}

/** One progress line: stage, bar, percent, counts, rate and ETA with its range. */
function describeProgress(
  progress: {
    percent: number;
    processed: number;
    total: number | null;
    stage: string | null;
    counts: { completed: number; failed: number; skipped: number };
  },
  estimate: {
    ratePerSecond: number | null;
    etaMs: number | null;
    range?: { lowMs: number; highMs: number } | null;
  },
): string {
  const bar = '█'.repeat(Math.round(progress.percent / 5)).padEnd(20, '░');
  const rate = estimate.ratePerSecond === null ? '' : `  ${estimate.ratePerSecond.toFixed(1)}/s`;
  const eta =
    estimate.etaMs === null
      ? ''
      : `  ETA ${seconds(estimate.etaMs)}${estimate.range ? ` (${seconds(estimate.range.lowMs)}–${seconds(estimate.range.highMs)})` : ''}`;
  return `[${(progress.stage ?? '').padEnd(8)}] ${bar} ${progress.percent.toFixed(1).padStart(5)}%  ${progress.processed}/${progress.total ?? '?'}  ok ${progress.counts.completed}  failed ${progress.counts.failed}  skipped ${progress.counts.skipped}${rate}${eta}`;
}

function seconds(ms: number): string {
  return ms >= 60_000
    ? `${Math.floor(ms / 60_000)}m ${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`
    : `${(ms / 1000).toFixed(0)}s`;
}
