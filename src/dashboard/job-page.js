// One job: its header figures, stages, throughput and ETA, failures, resume point, timeline
// and log, kept live by the job's event stream.
import { html, render } from '/dashboard/vendor/lit-html/lit-html.js';
import { ref } from '/dashboard/vendor/lit-html/directives/ref.js';
import { eventTypes } from '/dashboard/catalogue.js';
import { api, download, followStream } from './api.js';
import { EventList } from './event-list.js';
import {
  describeEta,
  formatClock,
  formatCount,
  formatDuration,
  formatOf,
  formatPercent,
  formatRate,
  formatTime,
  hasEnded,
} from './format.js';
import { jobPath, jobTable, progressCell, projectPath, stamped } from './job-table.js';
import { frameScheduler, refresher } from './scheduling.js';
import { numberCell, numeric, tableHead } from './table.js';
import { stageTimeline } from './stage-timeline.js';
import { ThroughputChart } from './throughput-chart.js';

/** Items started without a lease count as stuck after this long in flight. */
const defaultLeaseMs = 5 * 60_000;
/** Item ids shown per list; the counts are whole. */
const sampleSize = 20;

const itemEvents = (type) => type.startsWith('item.') || type.startsWith('items.');
const failureEvents = new Set(['item.failed', 'item.completed', 'item.skipped', 'job.failed']);

/** GET /v1/jobs/:id as the page keeps it: it and its children stamped with when it came. */
function stampedStatus(status) {
  const children = status.children && {
    ...status.children,
    children: status.children.children.map(stamped),
  };
  return { ...status, ...stamped(status), children };
}

/** Shows one job, live; stops when `signal` aborts. */
export function jobPage(root, { signal, params: [jobId] }) {
  document.title = `${jobId} · Headway`;
  const base = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const state = {
    /** GET /v1/jobs/:id, with the time this page took it. */
    status: null,
    throughput: null,
    summary: null,
    failures: null,
    pending: null,
    stuck: null,
    missing: false,
    error: null,
    downloadError: null,
  };
  const draw = frameScheduler(() => {
    if (!signal.aborted) render(template(), root);
  });
  let chart = null;

  /** A refresher that reads `path` of this job into the state. */
  const reader = (path, minIntervalMs, apply) =>
    refresher(async () => {
      try {
        apply(await api(`${base}${path}`, { signal }));
        state.error = null;
      } catch (error) {
        if (signal.aborted) return;
        if (error.status === 404) state.missing = true;
        else state.error = error.message;
      }
      draw();
    }, minIntervalMs);

  const reads = {
    status: reader('', 100, (status) => (state.status = stampedStatus(status))),
    throughput: reader('/throughput', 1_000, (throughput) => {
      state.throughput = throughput;
      chart?.update(throughput, hasEnded(state.status?.progress.status));
    }),
    summary: reader('/summary', 2_000, (summary) => (state.summary = summary)),
    failures: reader('/failures', 2_000, (failures) => (state.failures = failures)),
    pending: reader(`/items?status=pending&limit=${sampleSize}`, 2_000, (items) => {
      state.pending = items;
    }),
    stuck: reader(
      `/items?status=stuck&leaseMs=${defaultLeaseMs}&limit=${sampleSize}`,
      2_000,
      (items) => (state.stuck = items),
    ),
  };

  const timeline = new EventList({
    path: `${base}/timeline`,
    filters: { type: '', since: '', until: '', text: '' },
    query: ({ type, since, until, text }) => {
      const query = new URLSearchParams();
      if (type) query.set('type', type);
      if (since) query.set('since', new Date(since).toISOString());
      if (until) query.set('until', new Date(until).toISOString());
      if (text.trim()) query.set('q', text.trim());
      return query;
    },
    onChange: draw,
    signal,
  });
  const logs = new EventList({
    path: `${base}/logs`,
    filters: { level: '' },
    query: ({ level }) => new URLSearchParams(level ? { level } : {}),
    onChange: draw,
    signal,
  });

  function readAll() {
    for (const read of Object.values(reads)) read.request();
    void timeline.reload();
    void logs.reload();
  }

  function onEvent(event) {
    reads.status.request();
    reads.throughput.request();
    if (failureEvents.has(event.type)) {
      reads.failures.request();
      reads.summary.request();
    }
    if (itemEvents(event.type)) {
      reads.pending.request();
      reads.stuck.request();
    }
    timeline.noteAppend();
    if (event.type === 'log.written') logs.noteAppend();
  }

  function onTimelineFilter(event) {
    const form = new FormData(event.currentTarget);
    timeline.setFilters({
      type: String(form.get('type') ?? ''),
      since: String(form.get('since') ?? ''),
      until: String(form.get('until') ?? ''),
      text: String(form.get('text') ?? ''),
    });
  }

  async function downloadFailures() {
    try {
      await download(`${base}/failures?format=export`, `${jobId}-failures.json`);
      state.downloadError = null;
    } catch (error) {
      state.downloadError = `Could not download the export: ${error.message}`;
    }
    draw();
  }

  const mountChart = (element) => {
    if (!element || chart || signal.aborted) return;
    chart = new ThroughputChart(element);
    if (state.throughput) chart.update(state.throughput, hasEnded(state.status?.progress.status));
  };

  function template() {
    if (state.missing) {
      return html`<p class="crumbs"><a href="/">Jobs</a></p>
        <h2>No job ${jobId}</h2>
        <p>The server knows no job with this id.</p>`;
    }
    const view = state.status;
    if (!view) {
      return html`<p class="crumbs"><a href="/">Jobs</a></p>
        <h2>${jobId}</h2>
        ${state.error ? html`<p class="error" role="alert">${state.error}</p>` : ''}
        <p class="muted">Loading…</p>`;
    }
    const now = Date.now();
    const { progress } = view;
    return html`${header(view, now)}
      <div class="panels">
        <section class="panel" aria-labelledby="stages-title">
          <h3 id="stages-title">Stages</h3>
          ${stageTimeline(progress, now, view.eta.stages)}
        </section>
        <section class="panel" aria-labelledby="throughput-title">
          <h3 id="throughput-title">Throughput and ETA</h3>
          <div
            class="chart"
            role="img"
            aria-label="Items processed and the rate over time, with the expected finish"
            ${ref(mountChart)}
          ></div>
          <p class="muted">${throughputCaption(view)}</p>
        </section>
        <section class="panel" aria-labelledby="failures-title" id="failures">
          <h3 id="failures-title">Failures</h3>
          ${failuresPanel()}
        </section>
        <section class="panel" aria-labelledby="resume-title" id="resume">
          <h3 id="resume-title">Resume</h3>
          ${resumePanel(progress)}
        </section>
        ${view.children ? childrenPanel(view.children, now) : ''}
        <section class="panel" aria-labelledby="timeline-title" id="timeline">
          <h3 id="timeline-title">Timeline</h3>
          ${timelineFilters()} ${timeline.template('Events, newest first')}
        </section>
        <section class="panel" aria-labelledby="log-title" id="log">
          <h3 id="log-title">Log</h3>
          <form class="filters" @submit=${(event) => event.preventDefault()}>
            <label
              >Level
              <select
                name="level"
                @change=${(event) => logs.setFilters({ level: event.target.value })}
              >
                <option value="">any</option>
                ${['debug', 'info', 'warn', 'error'].map(
                  (level) => html`<option>${level}</option>`,
                )}
              </select>
            </label>
          </form>
          ${logs.template('Log lines, newest first')}
        </section>
      </div>`;
  }

  function header(view, now) {
    const { progress, eta } = view;
    const sinceMs = Math.max(0, now - view.eta.takenAt);
    const { counts } = progress;
    const summary = state.summary;
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
      </div>
      <p class="muted">
        ${[progress.kind, progress.dataset, jobId].filter(Boolean).join(' · ')} · started
        ${formatTime(progress.startedAt)} · updated ${formatTime(progress.updatedAt)}
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
      <dl class="figures" id="figures">
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
      </dl>
      <div class="count-tables">
        <div class="table-wrap">
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
        </div>
        ${byTypeTable(progress.byType)}
      </div>`;
  }

  function finishText(progress, eta) {
    if (hasEnded(progress.status)) return progress.endedAt ? formatTime(progress.endedAt) : '–';
    if (eta.finishAt === null || !eta.range) return '–';
    const base = state.status.eta.takenAt;
    return `${formatClock(base + eta.etaMs)} (${formatClock(base + eta.range.lowMs)}–${formatClock(base + eta.range.highMs)})`;
  }

  function throughputCaption({ progress, eta }) {
    const processed = formatOf(progress.processed, progress.total);
    if (hasEnded(progress.status)) return `${processed} items; the job has ${progress.status}.`;
    if (eta.etaMs === null) {
      return progress.total === null
        ? `${processed} items at ${formatRate(eta.ratePerSecond)}; no total is known, so no finish is projected.`
        : `${processed} items; not enough measured yet to project a finish.`;
    }
    return `${processed} items at ${formatRate(eta.ratePerSecond)}; the dashed line is the expected finish, the band its range.`;
  }

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
                ${numberCell(formatCount(counts.completed))}
                ${numberCell(formatCount(counts.failed))} ${numberCell(formatCount(counts.skipped))}
              </tr>`,
          )}
        </tbody>
      </table>
    </div>`;
  }

  function failuresPanel() {
    const failures = state.failures;
    if (!failures) return html`<p class="muted">Loading…</p>`;
    const groups = failures.groups;
    const total = groups.reduce((sum, group) => sum + group.count, 0);
    return html`<p>
        ${total === 0 ? 'No failures.' : `${formatCount(total)} failures in ${groups.length} groups.`}
        <button type="button" id="download-failures" @click=${() => void downloadFailures()}>
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

  function resumePanel(progress) {
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
                    ${checkpoint.note ? `${checkpoint.note} · ` : ''}at
                    ${formatTime(checkpoint.at)}, version ${checkpoint.version}</span
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

  function childrenPanel(children, now) {
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

  function timelineFilters() {
    return html`<form
      class="filters"
      aria-label="Filter the timeline"
      @change=${onTimelineFilter}
      @submit=${(event) => {
        event.preventDefault();
        onTimelineFilter(event);
      }}
    >
      <label
        >Type
        <select name="type">
          <option value="">any</option>
          ${eventTypes.map((type) => html`<option>${type}</option>`)}
          <option value="x.*">custom (x.*)</option>
        </select>
      </label>
      <label>From <input name="since" type="datetime-local" step="1" /></label>
      <label>Until <input name="until" type="datetime-local" step="1" /></label>
      <label>Text <input name="text" type="search" autocomplete="off" /></label>
    </form>`;
  }

  draw();
  void followStream(`${base}/stream`, {
    signal,
    onOpen: ({ recovered }) => {
      if (recovered || !state.status) readAll();
    },
    onSnapshot(status) {
      state.status = stampedStatus(status);
      draw();
    },
    onEvent,
    onFatal(error) {
      if (error.status === 404) state.missing = true;
      else state.error = error.message;
      draw();
    },
  });
  // The current stage grows and the ETA counts down between events; leases run out.
  const ticker = setInterval(draw, 1_000);
  const leases = setInterval(() => {
    if (!hasEnded(state.status?.progress.status)) reads.stuck.request();
  }, 15_000);
  signal.addEventListener('abort', () => {
    clearInterval(ticker);
    clearInterval(leases);
    for (const read of Object.values(reads)) read.stop();
    chart?.destroy();
  });
}
