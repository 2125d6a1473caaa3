import type { RecordedEvent } from '../schema/recorded-event.ts';
import {
  addValue,
  copyHistogram,
  emptyHistogram,
  mean,
  quantile,
  recordValue,
} from './histogram.ts';
import type { Histogram } from './histogram.ts';
import { jobProgress } from './job-progress.ts';
import type { JobProgressState } from './job-progress.ts';
import { accumulatorFor } from './projection.ts';
import type { Projection } from './projection.ts';

/** One job's counts and item durations. */
export interface JobSummaryState {
  progress: JobProgressState;
  durations: Histogram;
}

/** The duration an event records, if any. */
function durationOf(event: RecordedEvent): number | undefined {
  return event.type === 'item.completed' || event.type === 'item.failed'
    ? event.data.durationMs
    : undefined;
}

/** One job's counts, durations, percentiles and throughput. */
export const jobSummary: Projection<JobSummaryState> = {
  name: 'job-summary',
  version: 2,
  initial: () => ({ progress: jobProgress.initial(), durations: emptyHistogram() }),
  evolve(state, event) {
    if (event.version <= state.progress.version) return state;
    const progress = jobProgress.evolve(state.progress, event);
    const durationMs = durationOf(event);
    return {
      progress,
      durations:
        durationMs === undefined ? state.durations : recordValue(state.durations, durationMs),
    };
  },
  accumulate(state) {
    const progress = accumulatorFor(jobProgress, state.progress);
    const durations = copyHistogram(state.durations);
    let version = state.progress.version;
    return {
      add(event) {
        if (event.version <= version) return;
        version = event.version;
        progress.add(event);
        const durationMs = durationOf(event);
        if (durationMs !== undefined) addValue(durations, durationMs);
      },
      result: () => ({ progress: progress.result(), durations: copyHistogram(durations) }),
    };
  },
};

/** The figures of a summary. */
export interface SummaryFigures {
  name: string;
  status: JobProgressState['status'];
  completed: number;
  failed: number;
  skipped: number;
  total: number | null;
  /** From start to end (or to the last event while running). */
  wallMs: number | null;
  throughputPerSecond: number | null;
  durations: {
    mean: number | null;
    p50: number | null;
    p90: number | null;
    p95: number | null;
    p99: number | null;
    min: number | null;
    max: number | null;
  };
}

/** The summary's figures. */
export function summarize(state: JobSummaryState): SummaryFigures {
  const { progress, durations } = state;
  const end = progress.endedAt ?? progress.updatedAt;
  const wallMs = progress.startedAt === null || end === null ? null : end - progress.startedAt;
  const outcomes = progress.counts.completed + progress.counts.failed + progress.counts.skipped;
  return {
    name: progress.name ?? progress.jobId ?? 'job',
    status: progress.status,
    completed: progress.counts.completed,
    failed: progress.counts.failed,
    skipped: progress.counts.skipped,
    total: progress.total,
    wallMs,
    throughputPerSecond: wallMs && wallMs > 0 ? outcomes / (wallMs / 1_000) : null,
    durations: {
      mean: mean(durations),
      p50: quantile(durations, 0.5),
      p90: quantile(durations, 0.9),
      p95: quantile(durations, 0.95),
      p99: quantile(durations, 0.99),
      min: durations.min,
      max: durations.max,
    },
  };
}

const count = (value: number) => value.toLocaleString('en-US');

function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 60) return `${(ms / 1_000).toFixed(1)}s`;
  if (seconds < 3_600)
    return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3_600)}h ${String(Math.floor((seconds % 3_600) / 60)).padStart(2, '0')}m`;
}

/**
 * One human line, from a summary state or its figures (as `GET /v1/jobs/:id/summary` sends them).
 *
 * @example
 * formatSummary(state); // 'crawl completed: 1,940 ok, 48 failed, 12 skipped of 2,000 in 3m 12s (10.4 items/s); p50 120 ms, p95 900 ms'
 */
export function formatSummary(state: JobSummaryState | SummaryFigures): string {
  const figures = 'progress' in state ? summarize(state) : state;
  const parts = [
    `${figures.name} ${figures.status}: ${count(figures.completed)} ok, ${count(figures.failed)} failed, ${count(figures.skipped)} skipped`,
  ];
  if (figures.total !== null) parts.push(` of ${count(figures.total)}`);
  if (figures.wallMs !== null) parts.push(` in ${duration(figures.wallMs)}`);
  if (figures.throughputPerSecond !== null)
    parts.push(` (${figures.throughputPerSecond.toFixed(1)} items/s)`);
  const { p50, p95 } = figures.durations;
  if (p50 !== null && p95 !== null) parts.push(`; p50 ${duration(p50)}, p95 ${duration(p95)}`);
  return parts.join('');
}
