// How figures read on screen.

const ended = new Set(['completed', 'failed', 'cancelled']);

/** True for a job that has finished, one way or another. */
export const hasEnded = (status) => ended.has(status);

// One formatter each, made once: pages format thousands of figures per frame.
const counts = new Intl.NumberFormat('en-US');
const dateTimes = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
  second: '2-digit',
});
const clocks = new Intl.DateTimeFormat(undefined, {
  hour: 'numeric',
  minute: '2-digit',
  second: '2-digit',
});

/** 1,234 */
export const formatCount = (value) => counts.format(value);

/** 42.3% */
export const formatPercent = (value) => `${value.toFixed(1)}%`;

/** 850 ms, 12s, 3m 05s, 2h 10m */
export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** A local date and time, or nothing. */
export function formatTime(epochMs) {
  return epochMs === null || epochMs === undefined ? '' : dateTimes.format(epochMs);
}

/** A local time of day, for axes and finish times within a day. */
export function formatClock(epochMs) {
  return clocks.format(epochMs);
}

/** 33.4/s */
export function formatRate(perSecond) {
  if (perSecond === null || perSecond === undefined) return '–';
  return `${perSecond < 10 ? perSecond.toFixed(2) : perSecond.toFixed(1)}/s`;
}

/** 1,504 / 2,000 (or 1,504 / ? when the total is unknown) */
export function formatOf(processed, total) {
  return `${formatCount(processed)} / ${total === null ? '?' : formatCount(total)}`;
}

/**
 * The ETA as a point and a range: "15s (13s–17s)"; "done" once ended, "–" when unknown.
 * `sinceMs` is how long ago the estimate was taken, so a shown ETA counts down.
 */
export function describeEta(status, eta, sinceMs = 0) {
  if (hasEnded(status)) return 'done';
  if (eta.etaMs === null) return '–';
  const left = (ms) => formatDuration(Math.max(0, ms - sinceMs));
  const range = eta.range ? ` (${left(eta.range.lowMs)}–${left(eta.range.highMs)})` : '';
  return `${left(eta.etaMs)}${range}`;
}
