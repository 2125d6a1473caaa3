// The jobs overview: GET /v1/jobs a page at a time, kept live by the /v1/stream events. The
// filters are in overview-filters.js.
import { html, render } from '/dashboard/vendor/lit-html/lit-html.js';
import { api, followStream } from './api.js';
import { hasEnded } from './format.js';
import { byUpdate, jobTable, stamped } from './job-table.js';
import {
  asked,
  filtersForm,
  filtersFromAddress,
  filtersFromForm,
  listQuery,
  matches,
  saveFiltersInAddress,
  searched,
} from './overview-filters.js';
import { frameScheduler, refresher } from './scheduling.js';

const pageSize = 100;
/** Least time between two reads of changed jobs; changes in between are read together. */
const refreshEveryMs = 100;
/** More changed jobs than this are read as one page instead of one by one. */
const changedOneByOne = 20;
/** Typing waits this long for a pause before the server is asked. */
const searchPauseMs = 200;
/**
 * The page is read again this often while it may show a condition coming on: a silent job
 * turns stalled or late with no event to say so.
 */
const conditionsEveryMs = 30_000;

/** Shows the jobs a page at a time, filtered, live; stops when `signal` aborts. */
export function overviewPage(root, { signal }) {
  document.title = 'Jobs · Headway';
  // What the page's functions below share: its state, its redraw, its pending reads and timers.
  const page = {
    state: {
      /** jobId -> the job's view on this page, as GET /v1/jobs/:id gives it without children. */
      jobs: new Map(),
      /** The cursor of each page up to this one (null for the first); the last is this one's. */
      cursors: [null],
      nextCursor: null,
      filters: filtersFromAddress(),
      changed: new Set(),
      loading: false,
      error: null,
    },
    signal,
    draw: frameScheduler(() => {
      if (!signal.aborted) render(overviewTemplate(page), root);
    }),
    latestLoad: 0,
    searchTimer: null,
  };
  page.onFilter = (event) => onFilter(page, event);
  page.changedJobs = refresher(() => readChanged(page), refreshEveryMs);

  page.draw();
  void followStream('/v1/stream', {
    signal,
    // The first connection and every recovery read the page afresh.
    onOpen: () => loadPage(page),
    onEvent(event) {
      page.state.changed.add(event.streamId);
      page.changedJobs.request();
    },
  });
  // ETAs count down between updates.
  const ticker = setInterval(page.draw, 1_000);
  const judged = setInterval(() => {
    if (!page.state.loading && mayTurn(page.state)) void loadPage(page);
  }, conditionsEveryMs);
  signal.addEventListener('abort', () => {
    page.changedJobs.stop();
    clearInterval(ticker);
    clearInterval(judged);
    clearTimeout(page.searchTimer);
  });
}

/**
 * True when a read may find a condition the page does not show: a job on it is unfinished, or
 * only stalled jobs are asked for (any job may turn stalled and join).
 */
function mayTurn(state) {
  if (state.filters.stalled) return true;
  for (const job of state.jobs.values()) if (!hasEnded(job.progress.status)) return true;
  return false;
}

/** Reads this page again, as the filters stand. */
async function loadPage(page) {
  const { state, signal } = page;
  const load = (page.latestLoad += 1);
  state.loading = true;
  try {
    const cursor = state.cursors.at(-1);
    const jobs = await api(listQuery(state.filters, { cursor, limit: pageSize }), { signal });
    // Filters or the page changed while this one was on its way: a later load is right.
    if (load !== page.latestLoad) return;
    const before = state.jobs;
    state.jobs = new Map();
    for (const job of jobs.jobs) {
      // A job read one by one after this page was asked for may be newer than its row.
      const shown = before.get(job.jobId);
      const newer = shown && shown.progress.version > job.progress.version;
      state.jobs.set(job.jobId, newer ? shown : stamped(job));
    }
    state.nextCursor = jobs.nextCursor;
    state.error = null;
  } catch (error) {
    if (signal.aborted || load !== page.latestLoad) return;
    state.error = `Could not load jobs: ${error.message}`;
  } finally {
    if (load === page.latestLoad) state.loading = false;
  }
  page.draw();
}

/** Goes to the page whose cursors are `cursors`. */
function goTo(page, cursors) {
  page.state.cursors = cursors;
  // Until the page arrives there is no next page to go to, and the pager waits.
  page.state.nextCursor = null;
  void loadPage(page);
  page.draw();
}

/** Keeps the newer of two reads of a job: a read started earlier may land later. */
function keep(state, view) {
  const shown = state.jobs.get(view.jobId);
  if (!shown || view.progress.version >= shown.progress.version) {
    state.jobs.set(view.jobId, stamped(view));
  }
}

/**
 * Reads the jobs that changed, one by one when few: those on this page, and on the first
 * page those that are not on it yet, which join it when they match. Many changes, or one
 * that joins, read the whole page: it is newest first, so a job joining pushes one out.
 */
async function readChanged(page) {
  const { state, signal } = page;
  const onFirstPage = state.cursors.length === 1;
  const jobIds = [...state.changed].filter((jobId) => onFirstPage || state.jobs.has(jobId));
  state.changed.clear();
  if (jobIds.length > changedOneByOne) return loadPage(page);
  const views = await Promise.all(
    jobIds.map((jobId) =>
      api(`/v1/jobs/${encodeURIComponent(jobId)}`, { signal }).catch(() => null),
    ),
  );
  const now = Date.now();
  const joining = views.some(
    (view) =>
      view &&
      !state.jobs.has(view.jobId) &&
      matches(state.filters, view, now) &&
      searched(state.filters, view),
  );
  if (joining) return loadPage(page);
  for (const view of views) if (view && state.jobs.has(view.jobId)) keep(state, view);
  page.draw();
}

/** Takes the filters from the form; a change the server must answer goes to the first page. */
function onFilter(page, event) {
  const { state } = page;
  const before = state.filters;
  // Kept as typed, so a re-render never takes a space from under the cursor.
  state.filters = filtersFromForm(new FormData(event.currentTarget));
  saveFiltersInAddress(state.filters);
  if (asked(before) === asked(state.filters)) return;
  clearTimeout(page.searchTimer);
  // Typing in a text field waits for a pause; the other filters ask at once.
  const typed = event.target.type === 'text' || event.target.type === 'search';
  page.searchTimer = setTimeout(() => goTo(page, [null]), typed ? searchPauseMs : 0);
}

/** The overview: the filters, the jobs that match them, and the pager. */
function overviewTemplate(page) {
  const { state } = page;
  const now = Date.now();
  const jobs = [...state.jobs.values()]
    .filter((job) => matches(state.filters, job, now))
    .sort(byUpdate);
  const number = state.cursors.length;
  return html`<h2 class="visually-hidden">Jobs</h2>
    ${filtersForm(state.filters, page.onFilter)}
    ${state.error ? html`<p class="error" role="alert">${state.error}</p>` : ''}
    ${jobTable(jobs, { now })}
    <p id="empty" ?hidden=${jobs.length > 0}>No jobs match.</p>
    <nav class="pager" aria-label="Pages of jobs" ?hidden=${number === 1 && !state.nextCursor}>
      <button
        id="previous-page"
        type="button"
        ?disabled=${number === 1 || state.loading}
        @click=${() => goTo(page, state.cursors.slice(0, -1))}
      >
        Newer
      </button>
      <span id="page-number">Page ${number}</span>
      <button
        id="next-page"
        type="button"
        ?disabled=${state.nextCursor === null || state.loading}
        @click=${() => goTo(page, [...state.cursors, state.nextCursor])}
      >
        Older
      </button>
    </nav>`;
}
