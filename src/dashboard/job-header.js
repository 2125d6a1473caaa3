// The top of the job page: where the job sits, its status and overall progress, its headline
// figures and its counts by status and by item type.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { conditionBadges } from './conditions.js';
import {
  describeEta,
  formatClock,
  formatCount,
  formatDuration,
  formatRate,
  formatTime,
  hasEnded,
} from './format.js';
import { jobPath, progressCell, projectPath } from './job-table.js';
import { numberCell, tableHead } from './table.js';

/** The job's header from its status `view` and `summary` (null until read), as of `now`. */
export function jobHeader(jobId, view, summary, now) {
  const { progress } = view;
  return html`<p class="crumbs">
      <a href="/">Jobs</a>
      ${
        progress.project === null
          ? ''
          : html` / <a href=${projectPath(progress.project)}>${progress.project}</a>`
      }
      ${
        progress.parentJobId === null
          ? ''
          : html` / part of <a href=${jobPath(progress.parentJobId)}>${progress.parentJobId}</a>`
      }
    </p>
    <div class="job-title">
      <h2>${progress.name ?? jobId}</h2>
      <span class=${`badge status-${progress.status}`} id="job-status">${progress.status}</span>
      ${conditionBadges(view.conditions, Math.max(0, now - view.eta.takenAt))}
    </div>
    <p class="muted">
      ${[progress.kind, progress.dataset, jobId].filter(Boolean).join(' · ')} · started
      ${formatTime(progress.startedAt)} · updated ${formatTime(progress.updatedAt)}
      ${lastEvent(progress, now)}
    </p>
    <div class="overall" id="overall">
      ${progressCell(progress)}
      ${progress.stage ? html`<span class="muted">stage ${progress.stage}</span>` : ''}
    </div>
    ${
      progress.message || progress.current
        ? html`<p class="message">
            ${progress.message ?? ''}
            ${progress.current ? html`<span class="muted">current: ${progress.current}</span>` : ''}
          </p>`
        : ''
    }
    ${figures(view, summary, now)}
    <div class="count-tables">
      ${countsTable(progress.counts)} ${byTypeTable(progress.byType)}
    </div>`;
}

/** How long ago a running job's latest event was: "· last event 12s ago". */
function lastEvent(progress, now) {
  if (progress.status !== 'running' || progress.lastEventAt == null) return '';
  const ago = formatDuration(Math.max(0, now - progress.lastEventAt));
  return html`<span id="last-event" title=${formatTime(progress.lastEventAt)}
    >· last event ${ago} ago</span
  >`;
}

/** The ETA, finish, rate, item times and wall time, as a list of figures. */
function figures(view, summary, now) {
  const { progress, eta } = view;
  const sinceMs = Math.max(0, now - eta.takenAt);
  return html`<dl class="figures" id="figures">
    <div>
      <dt>ETA</dt>
      <dd id="eta">${describeEta(progress.status, eta, sinceMs)}</dd>
    </div>
    <div>
      <dt>Finish</dt>
      <dd>${finishText(progress, eta)}</dd>
    </div>
    <div>
      <dt>Rate</dt>
      <dd>${formatRate(eta.ratePerSecond)}</dd>
    </div>
    <div>
      <dt>Item time p50 / p95</dt>
      <dd>
        ${
          summary?.durations.p50 == null
            ? '–'
            : `${formatDuration(summary.durations.p50)} / ${formatDuration(summary.durations.p95)}`
        }
      </dd>
    </div>
    <div>
      <dt>Wall time</dt>
      <dd>${formatDuration(summary?.wallMs ?? null)}</dd>
    </div>
  </dl>`;
}

/** When the job ended, or when it is expected to, with the range, from the ETA's reading. */
function finishText(progress, eta) {
  if (hasEnded(progress.status)) return progress.endedAt ? formatTime(progress.endedAt) : '–';
  if (eta.finishAt === null || !eta.range) return '–';
  const base = eta.takenAt;
  return `${formatClock(base + eta.etaMs)} (${formatClock(base + eta.range.lowMs)}–${formatClock(base + eta.range.highMs)})`;
}

/** The job's items by status, one row. */
function countsTable(counts) {
  return html`<div class="table-wrap">
    <table class="counts" id="counts" aria-label="Items by status">
      ${tableHead(['planned', 'pending', 'in flight', 'completed', 'failed', 'skipped'])}
      <tbody>
        <tr>
          ${[
            counts.planned,
            counts.pending,
            counts.inFlight,
            counts.completed,
            counts.failed,
            counts.skipped,
          ].map((count) => numberCell(formatCount(count)))}
        </tr>
      </tbody>
    </table>
  </div>`;
}

/** The outcomes of each item type, or nothing when no item has a type. */
function byTypeTable(byType) {
  const types = Object.entries(byType);
  if (types.length === 0) return '';
  return html`<div class="table-wrap">
    <table class="counts" id="by-type" aria-label="Outcomes by item type">
      ${tableHead(['type', 'completed', 'failed', 'skipped'])}
      <tbody>
        ${types.map(
          ([type, counts]) =>
            html`<tr data-type=${type}>
              <th scope="row">${type}</th>
              ${numberCell(formatCount(counts.completed))} ${numberCell(formatCount(counts.failed))}
              ${numberCell(formatCount(counts.skipped))}
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
