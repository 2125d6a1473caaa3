// The job page's panels below its header: the throughput caption, the failures grouped, the
// resume point with the pending and stuck items, and the child jobs.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import {
  formatCount,
  formatDuration,
  formatOf,
  formatPercent,
  formatRate,
  formatTime,
  hasEnded,
} from './format.js';
import { defaultLeaseMs } from './job-data.js';
import { jobTable } from './job-table.js';
import { numberCell, numeric, tableHead } from './table.js';

/** The line under the throughput chart: what has been processed and what the chart projects. */
export function throughputCaption({ progress, eta }) {
  const processed = formatOf(progress.processed, progress.total);
  if (hasEnded(progress.status)) return `${processed} items; the job has ${progress.status}.`;
  if (eta.etaMs === null) {
    return progress.total === null
      ? `${processed} items at ${formatRate(eta.ratePerSecond)}; no total is known, so no finish is projected.`
      : `${processed} items; not enough measured yet to project a finish.`;
  }
  return `${processed} items at ${formatRate(eta.ratePerSecond)}; the dashed line is the expected finish, the band its range.`;
}

/** The failures grouped by cause, with a button for the export; `onDownload` fetches it. */
export function failuresPanel(state, onDownload) {
  const failures = state.failures;
  if (!failures) return html`<p class="muted">Loading…</p>`;
  const groups = failures.groups;
  const total = groups.reduce((sum, group) => sum + group.count, 0);
  return html`<p>
      ${total === 0 ? 'No failures.' : `${formatCount(total)} failures in ${groups.length} groups.`}
      <button type="button" id="download-failures" @click=${() => void onDownload()}>
        Download the failures export
      </button>
    </p>
    ${state.downloadError ? html`<p class="error" role="alert">${state.downloadError}</p>` : ''}
    ${
      groups.length === 0
        ? ''
        : html`<div class="table-wrap">
            <table class="failure-groups" aria-label="Failure groups">
              ${tableHead([
                'category',
                'message',
                numeric('count'),
                'retryable',
                'items and sample error',
              ])}
              <tbody>
                ${groups.map((group) => failureRow(group))}
              </tbody>
            </table>
          </div>`
    }`;
}

/** One failure group: its cause, count, whether it may be retried, items and a sample error. */
function failureRow(group) {
  const retryable =
    group.retryable === group.count
      ? 'yes'
      : group.retryable === 0
        ? 'no'
        : `${group.retryable} of ${group.count}`;
  const shown = group.itemIds.slice(0, 5);
  const more = group.count - shown.length;
  const error = group.sampleError;
  return html`<tr data-key=${group.key}>
    <td>${group.category}</td>
    <td class="wrap">${group.message}</td>
    ${numberCell(formatCount(group.count))}
    <td>${retryable}</td>
    <td class="wrap">
      <span class="items"
        >${shown.join(', ')}${more > 0 ? ` and ${formatCount(more)} more` : ''}</span
      >
      <details>
        <summary>sample error</summary>
        <pre>
${[
            error.message,
            error.code ? `code: ${error.code}` : '',
            error.stage ? `stage: ${error.stage}` : '',
            error.file ? `file: ${error.file}` : '',
            ...(error.stack ?? []),
          ]
            .filter(Boolean)
            .join('\n')}</pre>
      </details>
    </td>
  </tr>`;
}

/** Where the job would resume: its last checkpoint, the items pending and those stuck. */
export function resumePanel(progress, state) {
  const checkpoint = progress.lastCheckpoint;
  // The status is read most often: when it says none, the list read before is stale.
  const list = (items, known) =>
    items === null
      ? html`<span class="muted">Loading…</span>`
      : items.count === 0 || known === 0
        ? html`<span class="muted">none</span>`
        : html`<span class="items">${items.items.map((item) => item.itemId).join(', ')}</span>${
              items.count > items.items.length
                ? ` and ${formatCount(items.count - items.items.length)} more`
                : ''
            }`;
  return html`<dl class="resume">
    <div>
      <dt>Last checkpoint</dt>
      <dd id="checkpoint">
        ${
          checkpoint === null
            ? html`<span class="muted">none yet</span>`
            : html`<code>${JSON.stringify(checkpoint.cursor)}</code>
                <span class="muted">
                  ${checkpoint.note ? `${checkpoint.note} · ` : ''}at ${formatTime(checkpoint.at)},
                  version ${checkpoint.version}</span
                >`
        }
      </dd>
    </div>
    <div>
      <dt>Pending (${formatCount(progress.counts.pending)})</dt>
      <dd id="pending">${list(state.pending, progress.counts.pending)}</dd>
    </div>
    <div>
      <dt>In flight (${formatCount(progress.counts.inFlight)})</dt>
      <dd>
        ${
          state.stuck === null
            ? ''
            : `${formatCount(state.stuck.count)} past their lease (items without one: ${formatDuration(defaultLeaseMs)})`
        }
      </dd>
    </div>
    <div>
      <dt>Stuck</dt>
      <dd id="stuck">${list(state.stuck, progress.counts.inFlight)}</dd>
    </div>
  </dl>`;
}

/** The child jobs of a parent job: their counts by status, progress and table. */
export function childrenPanel(children, now) {
  const statuses = Object.entries(children.byStatus)
    .map(([status, count]) => `${count} ${status}`)
    .join(', ');
  return html`<section class="panel" aria-labelledby="children-title">
    <h3 id="children-title">Child jobs</h3>
    <p>
      ${formatCount(children.count)} jobs (${statuses}) · ${formatPercent(children.percent)} ·
      ${formatOf(children.processed, children.total)} items
    </p>
    ${jobTable(children.children, { id: 'children', label: 'Child jobs', now })}
  </section>`;
}
