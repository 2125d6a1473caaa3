// The jobs overview: GET /v1/jobs a page at a time, kept live by the /v1/stream events.
import { html, render } from '/dashboard/vendor/lit-html/lit-html.js';
import { api, followStream } from './api.js';
import { hasEnded } from './format.js';
import { byUpdate, jobTable, stamped } from './job-table.js';
import { frameScheduler, refresher } from './scheduling.js';

const pageSize = 100;
/** Least time between two reads of changed jobs; changes in between are read together. */
const refreshEveryMs = 100;
/** More changed jobs than this are read as one page instead of one by one. */
const changedOneByOne = 20;
/** Typing waits this long for a pause before the server is asked. */
const searchPauseMs = 200;
/** Ended jobs stay in the active view this long, as the API keeps them. */
const finishedVisibleMs = 10 * 60_000;
const statuses = ['running', 'paused', 'pending', 'completed', 'failed', 'cancelled'];

/** Filters as the address holds them: ?project=&status=&active=1&q= */
function filtersFromAddress() {
  const query = new URLSearchParams(location.search);
  return {
    project: query.get('project') ?? '',
    status: query.get('status') ?? '',
    active: query.get('active') === '1',
    search: query.get('q') ?? '',
  };
}

/** The filters as the server is asked them (trimmed), one line each. */
const asked = (filters) =>
  [filters.project.trim(), filters.status, filters.active, filters.search.trim()].join('\n');

function saveFiltersInAddress(filters) {
  const query = new URLSearchParams();
  if (filters.project.trim()) query.set('project', filters.project.trim());
  if (filters.status) query.set('status', filters.status);
  if (filters.active) query.set('active', '1');
  if (filters.search.trim()) query.set('q', filters.search.trim());
  const search = query.size > 0 ? `?${query}` : '';
  if (search !== location.search) history.replaceState(history.state, '', `/${search}`);
}

/** Shows the jobs a page at a time, filtered, live; stops when `signal` aborts. */
export function overviewPage(root, { signal }) {
  document.title = 'Jobs · Headway';
  const state = {
    /** jobId -> the job's view on this page, as GET /v1/jobs/:id gives it without children. */
    jobs: new Map(),
    /** The cursor of each page up to this one (null for the first); the last is this one's. */
    cursors: [null],
    nextCursor: null,
    filters: filtersFromAddress(),
    changed: new Set(),
    loading: false,
    error: null,
  };
  const draw = frameScheduler(() => {
    if (!signal.aborted) render(template(), root);
  });
  const onFirstPage = () => state.cursors.length === 1;

  function listQuery({ cursor = null, limit = pageSize } = {}) {
    const { status, active } = state.filters;
    const project = state.filters.project.trim();
    const search = state.filters.search.trim();
    const query = new URLSearchParams({ limit: String(limit) });
    if (project) query.set('project', project);
    if (status) query.set('status', status);
    if (active) query.set('active', 'true');
    if (search) query.set('q', search);
    if (cursor) query.set('cursor', cursor);
    return `/v1/jobs?${query}`;
  }

  let latestLoad = 0;
  /** Reads this page again, as the filters stand. */
  async function loadPage() {
    const load = (latestLoad += 1);
    state.loading = true;
    try {
      const page = await api(listQuery({ cursor: state.cursors.at(-1) }), { signal });
      // Filters or the page changed while this one was on its way: a later load is right.
      if (load !== latestLoad) return;
      const before = state.jobs;
      state.jobs = new Map();
      for (const job of page.jobs) {
        // A job read one by one after this page was asked for may be newer than its row.
        const shown = before.get(job.jobId);
        const newer = shown && shown.progress.version > job.progress.version;
        state.jobs.set(job.jobId, newer ? shown : stamped(job));
      }
      state.nextCursor = page.nextCursor;
      state.error = null;
    } catch (error) {
      if (signal.aborted || load !== latestLoad) return;
      state.error = `Could not load jobs: ${error.message}`;
    } finally {
      if (load === latestLoad) state.loading = false;
    }
    draw();
  }

  function goTo(cursors) {
    state.cursors = cursors;
    // Until the page arrives there is no next page to go to, and the pager waits.
    state.nextCursor = null;
    void loadPage();
    draw();
  }

  /** Keeps the newer of two reads of a job: a read started earlier may land later. */
  function keep(view) {
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
  const changedJobs = refresher(async () => {
    const jobIds = [...state.changed].filter((jobId) => onFirstPage() || state.jobs.has(jobId));
    state.changed.clear();
    if (jobIds.length > changedOneByOne) return loadPage();
    const views = await Promise.all(
      jobIds.map((jobId) =>
        api(`/v1/jobs/${encodeURIComponent(jobId)}`, { signal }).catch(() => null),
      ),
    );
    const now = Date.now();
    const joining = views.some(
      (view) => view && !state.jobs.has(view.jobId) && matches(view, now) && searched(view),
    );
    if (joining) return loadPage();
    for (const view of views) if (view && state.jobs.has(view.jobId)) keep(view);
    draw();
  }, refreshEveryMs);

  /** Whether a job has the searched text, as the server searches it. */
  function searched({ jobId, progress }) {
    const search = state.filters.search.trim().toLowerCase();
    const text = [jobId, progress.name, progress.kind, progress.project].join(' ');
    return !search || text.toLowerCase().includes(search);
  }

  /** Whether a job on this page still belongs on it as the filters stand. */
  function matches({ progress }, now) {
    const { status, active } = state.filters;
    const project = state.filters.project.trim();
    if (project && progress.project !== project) return false;
    if (status && progress.status !== status) return false;
    if (active && hasEnded(progress.status)) {
      if (progress.endedAt === null || now - progress.endedAt > finishedVisibleMs) return false;
    }
    return true;
  }

  let searchTimer = null;
  function onFilter(event) {
    const form = new FormData(event.currentTarget);
    const before = state.filters;
    // Kept as typed, so a re-render never takes a space from under the cursor.
    state.filters = {
      project: String(form.get('project') ?? ''),
      status: String(form.get('status') ?? ''),
      active: form.get('active') === 'on',
      search: String(form.get('search') ?? ''),
    };
    saveFiltersInAddress(state.filters);
    if (asked(before) === asked(state.filters)) return;
    clearTimeout(searchTimer);
    // Typing in a text field waits for a pause; the other filters ask at once.
    const typed = event.target.type === 'text' || event.target.type === 'search';
    searchTimer = setTimeout(() => goTo([null]), typed ? searchPauseMs : 0);
  }

  function template() {
    const now = Date.now();
    const jobs = [...state.jobs.values()].filter((job) => matches(job, now)).sort(byUpdate);
    const { project, status, active, search } = state.filters;
    const page = state.cursors.length;
    return html`<h2 class="visually-hidden">Jobs</h2>
      <form
        id="filters"
        aria-label="Filter jobs"
        @input=${onFilter}
        @submit=${(event) => event.preventDefault()}
      >
        <label
          >Project <input name="project" type="text" autocomplete="off" .value=${project}
        /></label>
        <label
          >Status
          <select name="status">
            <option value="">any</option>
            ${statuses.map(
              (name) => html`<option value=${name} ?selected=${name === status}>${name}</option>`,
            )}
          </select>
        </label>
        <label><input name="active" type="checkbox" .checked=${active} /> Active only</label>
        <label
          >Search <input name="search" type="search" autocomplete="off" .value=${search}
        /></label>
      </form>
      ${state.error ? html`<p class="error" role="alert">${state.error}</p>` : ''}
      ${jobTable(jobs, { now })}
      <p id="empty" ?hidden=${jobs.length > 0}>No jobs match.</p>
      <nav class="pager" aria-label="Pages of jobs" ?hidden=${page === 1 && !state.nextCursor}>
        <button
          id="previous-page"
          type="button"
          ?disabled=${page === 1 || state.loading}
          @click=${() => goTo(state.cursors.slice(0, -1))}
        >
          Newer
        </button>
        <span id="page-number">Page ${page}</span>
        <button
          id="next-page"
          type="button"
          ?disabled=${state.nextCursor === null || state.loading}
          @click=${() => goTo([...state.cursors, state.nextCursor])}
        >
          Older
        </button>
      </nav>`;
  }

  draw();
  void followStream('/v1/stream', {
    signal,
    // The first connection and every recovery read the page afresh.
    onOpen: () => loadPage(),
    onEvent(event) {
      state.changed.add(event.streamId);
      changedJobs.request();
    },
  });
  // ETAs count down between updates.
  const ticker = setInterval(draw, 1_000);
  signal.addEventListener('abort', () => {
    changedJobs.stop();
    clearInterval(ticker);
    clearTimeout(searchTimer);
  });
}
