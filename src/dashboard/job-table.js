// The jobs table of the overview and the project page: one row per job, kept by job id.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { guard } from '/dashboard/vendor/lit-html/directives/guard.js';
import { repeat } from '/dashboard/vendor/lit-html/directives/repeat.js';
import { conditionBadges, conditionsTick } from './conditions.js';
import {
  describeEta,
  formatCount,
  formatPercent,
  formatRate,
  formatTime,
  hasEnded,
} from './format.js';
import { numberCell, tableHead } from './table.js';

export const jobPath = (jobId) => `/jobs/${encodeURIComponent(jobId)}`;
export const projectPath = (project) => `/projects/${encodeURIComponent(project)}`;

/** Newest update first, then by id, as the API pages them. */
export function byUpdate(a, b) {
  return (b.progress.updatedAt ?? 0) - (a.progress.updatedAt ?? 0) || (a.jobId < b.jobId ? -1 : 1);
}

/** A progress bar with its figures: "70.0% (7/10)". */
export function progressCell(progress) {
  const total = progress.total === null ? '?' : formatCount(progress.total);
  return html`<progress
      max="100"
      .value=${progress.percent}
      aria-label=${`${formatPercent(progress.percent)} done`}
    ></progress>
    <span class="percent"
      >${formatPercent(progress.percent)} (${formatCount(progress.processed)}/${total})</span
    >`;
}

/** True when a row changes by the second: its ETA counts down, or a condition counts on. */
const ticks = ({ progress, eta, conditions }) =>
  (!hasEnded(progress.status) && eta.etaMs !== null) || conditionsTick(conditions);

function jobRow({ jobId, progress, eta, conditions }, now) {
  const sinceMs = Math.max(0, now - (eta.takenAt ?? now));
  const badges = conditionBadges(conditions, sinceMs);
  return html`<tr data-job-id=${jobId}>
    <td><a href=${jobPath(jobId)} title=${jobId}>${progress.name ?? jobId}</a></td>
    <td>
      ${
        progress.project === null
          ? ''
          : html`<a href=${projectPath(progress.project)}>${progress.project}</a>`
      }
    </td>
    <td>${progress.kind ?? ''}</td>
    <td class=${`status-${progress.status}`}>${progress.status}${badges}</td>
    <td>${progressCell(progress)}</td>
    ${numberCell(formatRate(eta.ratePerSecond))}
    <td>${describeEta(progress.status, eta, sinceMs)}</td>
    <td class=${progress.counts.failed > 0 ? 'number failed-count' : 'number'}>
      ${formatCount(progress.counts.failed)}
    </td>
    <td>${formatTime(progress.startedAt)}</td>
    <td>${formatTime(progress.updatedAt)}</td>
  </tr>`;
}

const columns = [
  'Job',
  'Project',
  'Kind',
  'Status',
  'Progress',
  'Rate',
  'ETA',
  'Failed',
  'Started',
  'Updated',
];

/** The table of `jobs` (already filtered and sorted); `now` lets ETAs count down. */
export function jobTable(jobs, { label = 'Jobs', id = 'jobs', now = Date.now() } = {}) {
  return html`<div class="table-wrap">
    <table id=${id} aria-label=${label} class="jobs">
      ${tableHead(columns)}
      <tbody>
        ${repeat(
          jobs,
          (job) => job.jobId,
          // A row is drawn again only when its job changed, or its figures count by the second.
          (job) => guard([job, ticks(job) ? Math.floor(now / 1_000) : 0], () => jobRow(job, now)),
        )}
      </tbody>
    </table>
  </div>`;
}

/**
 * A job view as the API sends it, stamped with when its ETA and conditions were taken (this
 * page's clock).
 */
export function stamped(view) {
  return {
    jobId: view.jobId,
    progress: view.progress,
    eta: { ...view.eta, takenAt: Date.now() },
    conditions: view.conditions ?? null,
  };
}
