// One project: its jobs with their totals, and stage metrics across its jobs, kept live by the
// project's event stream.
import { html, render } from '/dashboard/vendor/lit-html/lit-html.js';
import { api, followStream } from './api.js';
import { formatCount, formatDuration, formatRate, hasEnded } from './format.js';
import { byUpdate, jobTable, stamped } from './job-table.js';
import { frameScheduler, refresher } from './scheduling.js';
import { numberCell, numeric, tableHead } from './table.js';

/** Least time between two reads of the project; events in between are read together. */
const refreshEveryMs = 500;
/**
 * The project is read again this often while a job of it is unfinished: a silent job turns
 * stalled or late with no event to say so.
 */
const conditionsEveryMs = 30_000;

/** Shows one project, live; stops when `signal` aborts. */
export function projectPage(root, { signal, params: [project] }) {
  document.title = `${project} · Headway`;
  const state = { totals: null, jobs: [], stages: [], error: null };
  const draw = frameScheduler(() => {
    if (!signal.aborted) render(projectTemplate(project, state), root);
  });
  const name = encodeURIComponent(project);

  const read = refresher(async () => {
    try {
      const [progress, metrics] = await Promise.all([
        api(`/v1/projects/${name}/progress`, { signal }),
        api(`/v1/metrics/stages?project=${name}`, { signal }),
      ]);
      // The API reads the name 'all' as every project: keep this project's own figures.
      state.totals = progress.projects.find((row) => row.project === project) ?? null;
      state.jobs = progress.jobs
        .filter((job) => job.progress.project === project)
        .map(stamped)
        .sort(byUpdate);
      state.stages = metrics.stages;
      state.error = null;
    } catch (error) {
      if (!signal.aborted) state.error = error.message;
    }
    draw();
  }, refreshEveryMs);

  draw();
  void followStream(`/v1/stream?project=${name}`, {
    signal,
    onOpen: () => read.request(),
    onEvent: () => read.request(),
  });
  const ticker = setInterval(draw, 1_000);
  const judged = setInterval(() => {
    if (state.jobs.some((job) => !hasEnded(job.progress.status))) read.request();
  }, conditionsEveryMs);
  signal.addEventListener('abort', () => {
    read.stop();
    clearInterval(ticker);
    clearInterval(judged);
  });
}

/** The project page: its totals, its jobs and its stage metrics across jobs. */
function projectTemplate(project, state) {
  return html`<p class="crumbs"><a href="/">Jobs</a> / project</p>
    <h2>${project}</h2>
    ${state.error ? html`<p class="error" role="alert">${state.error}</p>` : ''}
    ${
      state.totals === null
        ? html`<p class="muted">${state.error ? '' : 'No jobs in this project yet.'}</p>`
        : totalsFigures(state.totals)
    }
    <section aria-labelledby="project-jobs-title">
      <h3 id="project-jobs-title">Jobs</h3>
      ${jobTable(state.jobs, { label: `Jobs of ${project}` })}
    </section>
    <section aria-labelledby="stage-metrics-title">
      <h3 id="stage-metrics-title">Stages across jobs</h3>
      ${
        state.stages.length === 0
          ? html`<p class="muted">No finished stages yet.</p>`
          : stageMetricsTable(state.stages)
      }
    </section>`;
}

/** The project's totals: jobs by status and items by outcome. */
function totalsFigures(totals) {
  return html`<dl class="figures" id="project-totals">
    <div>
      <dt>Jobs</dt>
      <dd>${formatCount(totals.jobs)}</dd>
    </div>
    ${Object.entries(totals.byStatus).map(
      ([status, count]) =>
        html`<div>
          <dt>${status}</dt>
          <dd class=${`status-${status}`}>${formatCount(count)}</dd>
        </div>`,
    )}
    <div>
      <dt>Items processed</dt>
      <dd>${formatCount(totals.processed)}</dd>
    </div>
    <div>
      <dt>Completed</dt>
      <dd>${formatCount(totals.completed)}</dd>
    </div>
    <div>
      <dt>Failed</dt>
      <dd class=${totals.failed > 0 ? 'failed-count' : ''}>${formatCount(totals.failed)}</dd>
    </div>
    <div>
      <dt>Skipped</dt>
      <dd>${formatCount(totals.skipped)}</dd>
    </div>
  </dl>`;
}

/** Each stage's runs, mean and p95 time and rate, across the project's jobs. */
function stageMetricsTable(stages) {
  return html`<div class="table-wrap">
    <table id="stage-metrics" aria-label="Stage metrics">
      ${tableHead(['kind', 'stage', ...['runs', 'mean', 'p95', 'items/s'].map(numeric)])}
      <tbody>
        ${stages.map(
          (stage) =>
            html`<tr data-stage=${`${stage.kind}/${stage.stage}`}>
              <td>${stage.kind}</td>
              <td>${stage.stage}</td>
              ${numberCell(formatCount(stage.runs))} ${numberCell(formatDuration(stage.meanMs))}
              ${numberCell(formatDuration(stage.p95Ms))}
              ${numberCell(formatRate(stage.itemsPerSecond))}
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
