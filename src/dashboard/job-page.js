// One job: its header figures, stages, throughput and ETA, failures, resume point, timeline
// and log, kept live by the job's event stream. The data and its reads are in job-data.js,
// the header in job-header.js, the panels in job-panels.js.
import { html, render } from '/dashboard/vendor/lit-html/lit-html.js';
import { ref } from '/dashboard/vendor/lit-html/directives/ref.js';
import { eventTypes } from '/dashboard/catalogue.js';
import { hasEnded } from './format.js';
import { followJob, jobData } from './job-data.js';
import { jobHeader } from './job-header.js';
import { childrenPanel, failuresPanel, resumePanel, throughputCaption } from './job-panels.js';
import { frameScheduler } from './scheduling.js';
import { stageTimeline } from './stage-timeline.js';
import { ThroughputChart } from './throughput-chart.js';

/** Shows one job, live; stops when `signal` aborts. */
export function jobPage(root, { signal, params: [jobId] }) {
  document.title = `${jobId} · Headway`;
  const draw = frameScheduler(() => {
    if (!signal.aborted) render(jobTemplate(jobId, data, mountChart), root);
  });
  let chart = null;
  const ended = () => hasEnded(data.state.status?.progress.status);
  const data = jobData({
    jobId,
    signal,
    draw,
    onThroughput: (throughput) => chart?.update(throughput, ended()),
  });

  // The chart's element comes with the first full render; the chart is made once, then kept.
  const mountChart = (element) => {
    if (!element || chart || signal.aborted) return;
    chart = new ThroughputChart(element);
    if (data.state.throughput) chart.update(data.state.throughput, ended());
  };

  draw();
  followJob(data, { signal, draw, onStop: () => chart?.destroy() });
}

/** The whole job page from `data`, or a note while it loads or when there is no such job. */
function jobTemplate(jobId, { state, timeline, logs, downloadFailures }, mountChart) {
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
  return html`${jobHeader(jobId, view, state.summary, now)}
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
        ${failuresPanel(state, downloadFailures)}
      </section>
      <section class="panel" aria-labelledby="resume-title" id="resume">
        <h3 id="resume-title">Resume</h3>
        ${resumePanel(progress, state)}
      </section>
      ${view.children ? childrenPanel(view.children, now) : ''}
      <section class="panel" aria-labelledby="timeline-title" id="timeline">
        <h3 id="timeline-title">Timeline</h3>
        ${timelineFilters(timeline)} ${timeline.template('Events, newest first')}
      </section>
      <section class="panel" aria-labelledby="log-title" id="log">
        <h3 id="log-title">Log</h3>
        ${logFilters(logs)} ${logs.template('Log lines, newest first')}
      </section>
    </div>`;
}

/** The timeline's filters: type, time range and text, applied as they change. */
function timelineFilters(timeline) {
  return html`<form
    class="filters"
    aria-label="Filter the timeline"
    @change=${(event) => setTimelineFilters(timeline, event)}
    @submit=${(event) => {
      event.preventDefault();
      setTimelineFilters(timeline, event);
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

/** Sets the timeline's filters from its form. */
function setTimelineFilters(timeline, event) {
  const form = new FormData(event.currentTarget);
  timeline.setFilters({
    type: String(form.get('type') ?? ''),
    since: String(form.get('since') ?? ''),
    until: String(form.get('until') ?? ''),
    text: String(form.get('text') ?? ''),
  });
}

/** The log's filter: the least level shown. */
function logFilters(logs) {
  return html`<form class="filters" @submit=${(event) => event.preventDefault()}>
    <label
      >Level
      <select name="level" @change=${(event) => logs.setFilters({ level: event.target.value })}>
        <option value="">any</option>
        ${['debug', 'info', 'warn', 'error'].map((level) => html`<option>${level}</option>`)}
      </select>
    </label>
  </form>`;
}
