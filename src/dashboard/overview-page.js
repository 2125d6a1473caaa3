// The jobs overview: GET /v1/jobs, paged, kept live by the /v1/stream events.
import { html, render } from '/dashboard/vendor/lit-html/lit-html.js';
import { api, followStream } from './api.js';
import { hasEnded } from './format.js';
import { byUpdate, jobTable, stamped } from './job-table.js';
import { frameScheduler, refresher } from './scheduling.js';

const pageSize = 100;
/** Least time between two reads of changed jobs; changes in between are read together. */
const refreshEveryMs = 100;
/** More changed jobs than this are read as one list instead of one by one. */
const changedOneByOne = 20;
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

function saveFiltersInAddress(filters) {
  const query = new URLSearchParams();
  if (filters.project.trim()) query.set('project', filters.project.trim());
  if (filters.status) query.set('status', filters.status);
  if (filters.active) query.set('active', '1');
  if (filters.search.trim()) query.set('q', filters.search.trim());
  const search = query.size > 0 ? `?${query}` : '';
  if (search !== location.search) history.replaceState(history.state, '', `/${search}`);
}

/** Shows every job, filtered, live; stops when `signal` aborts. */
export function overviewPage(root, { signal }) {
  document.title = 'Jobs · Headway';
  const state = {
    /** jobId -> the job's view, as GET /v1/jobs/:id gives it without children. */
    jobs: new Map(),
    nextCursor: null,
    filters: filtersFromAddress(),
    changed: new Set(),
    error: null,
  };
  const draw = frameScheduler(() => render(template(), root));

  function listQuery({ cursor = null, limit = pageSize } = {}) {
    const { status, active } = state.filters;
    const project = state.filters.project.trim();
    const query = new URLSearchParams({ limit: String(limit) });
    if (project) query.set('project', project);
    if (status) query.set('status', status);
    if (active) query.set('active', 'true');
    if (cursor) query.set('cursor', cursor);
    return `/v1/jobs?${query}`;
  }

  let latestLoad = 0;
  async function loadJobs({ more = false } = {}) {
    const load = (latestLoad += 1);
    try {
      const page = await api(listQuery({ cursor: more ? state.nextCursor : null }), { signal });
      // Filters changed while this page was on its way: a later load has the right list.
      if (load !== latestLoad) return;
      if (!more) state.jobs.clear();
      for (const job of page.jobs) state.jobs.set(job.jobId, stamped(job));
      state.nextCursor = page.nextCursor;
      state.error = null;
    } catch (error) {
      if (signal.aborted) return;
      state.error = `Could not load jobs: ${error.message}`;
    }
    draw();
  }

  /** Reads the jobs that changed: one by one when few, as one list when many. */
  const changedJobs = refresher(async () => {
    const jobIds = [...state.changed];
    state.changed.clear();
    if (jobIds.length > changedOneByOne) {
      const limit = Math.min(10_000, Math.max(pageSize, state.jobs.size));
      const page = await api(listQuery({ limit }), { signal }).catch(() => null);
      for (const job of page?.jobs ?? []) state.jobs.set(job.jobId, stamped(job));
    } else {
      const views = await Promise.all(
        jobIds.map((jobId) =>
          api(`/v1/jobs/${encodeURIComponent(jobId)}`, { signal }).catch(() => null),
        ),
      );
      for (const view of views) if (view) state.jobs.set(view.jobId, stamped(view));
    }
    draw();
  }, refreshEveryMs);

  /** Whether a job belongs in the list as the filters stand. */
  function matches({ jobId, progress }, now) {
    const { status, active } = state.filters;
    const project = state.filters.project.trim();
    const search = state.filters.search.trim().toLowerCase();
    if (project && progress.project !== project) return false;
    if (status && progress.status !== status) return false;
    if (active && hasEnded(progress.status)) {
      if (progress.endedAt === null || now - progress.endedAt > finishedVisibleMs) return false;
    }
    if (search) {
      const text = `${jobId} ${progress.name ?? ''} ${progress.kind ?? ''}`.toLowerCase();
      if (!text.includes(search)) return false;
    }
    return true;
  }

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
    // Search narrows what is loaded; the other filters ask the server again.
    const asked = (filters) => [filters.project.trim(), filters.status, filters.active].join('\n');
    if (asked(before) !== asked(state.filters)) void loadJobs();
    else draw();
  }

  function template() {
    const now = Date.now();
    const jobs = [...state.jobs.values()].filter((job) => matches(job, now)).sort(byUpdate);
    const { project, status, active, search } = state.filters;
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
      <button
        id="more"
        type="button"
        ?hidden=${state.nextCursor === null}
        @click=${() => void loadJobs({ more: true })}
      >
        Load more
      </button>`;
  }

  draw();
  void followStream('/v1/stream', {
    signal,
    // The first connection and every recovery read the list afresh.
    onOpen: () => loadJobs(),
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
  });
}
