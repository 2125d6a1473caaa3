// The jobs overview: the list from GET /v1/jobs, kept live by the /v1/stream events.
import { createParser } from '/dashboard/vendor/eventsource-parser/index.js';

const pageSize = 100;
/** Least time between two refreshes of changed jobs; changes in between are batched. */
const refreshEveryMs = 100;

const token = takeToken();
const state = {
  /** jobId -> the job's view (GET /v1/jobs/:id without children). */
  jobs: new Map(),
  nextCursor: null,
  dirty: new Set(),
  refreshScheduled: false,
  lastRefresh: 0,
};

const elements = {
  connection: document.getElementById('connection'),
  filters: document.getElementById('filters'),
  rows: document.querySelector('#jobs tbody'),
  empty: document.getElementById('empty'),
  more: document.getElementById('more'),
};

/** A token given once as ?token= is kept for the session and taken out of the address. */
function takeToken() {
  const url = new URL(location.href);
  const given = url.searchParams.get('token');
  if (given) {
    sessionStorage.setItem('headway.token', given);
    url.searchParams.delete('token');
    history.replaceState(null, '', url);
  }
  return sessionStorage.getItem('headway.token');
}

function headers(extra = {}) {
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function api(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.error?.message ?? `HTTP ${response.status}`);
  }
  return response.json();
}

function filters() {
  const form = new FormData(elements.filters);
  return {
    project: String(form.get('project') ?? '').trim(),
    status: String(form.get('status') ?? ''),
    active: form.get('active') === 'on',
    search: String(form.get('search') ?? '')
      .trim()
      .toLowerCase(),
  };
}

function listQuery(cursor) {
  const { project, status, active } = filters();
  const query = new URLSearchParams({ limit: String(pageSize) });
  if (project) query.set('project', project);
  if (status) query.set('status', status);
  if (active) query.set('active', 'true');
  if (cursor) query.set('cursor', cursor);
  return `/v1/jobs?${query}`;
}

async function loadJobs({ more = false } = {}) {
  const page = await api(listQuery(more ? state.nextCursor : null));
  if (!more) state.jobs.clear();
  for (const job of page.jobs) state.jobs.set(job.jobId, job);
  state.nextCursor = page.nextCursor;
  render();
}

/** Whether a job belongs in the list as the filters stand. */
function matches(job) {
  const { project, status, active, search } = filters();
  const { progress } = job;
  if (project && progress.project !== project) return false;
  if (status && progress.status !== status) return false;
  if (active && !['running', 'paused', 'pending'].includes(progress.status)) {
    // Ended jobs stay in the active view for ten minutes, as the API keeps them.
    if (progress.endedAt === null || Date.now() - progress.endedAt > 10 * 60_000) return false;
  }
  if (search) {
    const text = `${job.jobId} ${progress.name ?? ''} ${progress.kind ?? ''}`.toLowerCase();
    if (!text.includes(search)) return false;
  }
  return true;
}

function render() {
  const jobs = [...state.jobs.values()]
    .filter(matches)
    .sort(
      (a, b) =>
        (b.progress.updatedAt ?? 0) - (a.progress.updatedAt ?? 0) || (a.jobId < b.jobId ? -1 : 1),
    );
  const existing = new Map([...elements.rows.children].map((row) => [row.dataset.jobId, row]));
  const rows = jobs.map((job) => {
    const row = existing.get(job.jobId) ?? createRow(job.jobId);
    fillRow(row, job);
    return row;
  });
  elements.rows.replaceChildren(...rows);
  elements.empty.hidden = rows.length > 0;
  elements.more.hidden = state.nextCursor === null;
}

function createRow(jobId) {
  const row = document.createElement('tr');
  row.dataset.jobId = jobId;
  for (let index = 0; index < 10; index += 1) row.append(document.createElement('td'));
  const bar = document.createElement('progress');
  bar.max = 100;
  const percent = document.createElement('span');
  percent.className = 'percent';
  row.children[4].append(bar, ' ', percent);
  for (const index of [5, 7]) row.children[index].classList.add('number');
  return row;
}

function fillRow(row, job) {
  const { progress, eta } = job;
  const cells = row.children;
  cells[0].textContent = progress.name ?? job.jobId;
  cells[0].title = job.jobId;
  cells[1].textContent = progress.project ?? '';
  cells[2].textContent = progress.kind ?? '';
  cells[3].textContent = progress.status;
  cells[3].className = `status-${progress.status}`;
  const bar = cells[4].querySelector('progress');
  bar.value = progress.percent;
  bar.setAttribute('aria-label', `${progress.percent.toFixed(1)}% done`);
  const total = progress.total === null ? '?' : progress.total.toLocaleString();
  cells[4].querySelector('.percent').textContent =
    `${progress.percent.toFixed(1)}% (${progress.processed.toLocaleString()}/${total})`;
  cells[5].textContent = eta.ratePerSecond === null ? '–' : `${eta.ratePerSecond.toFixed(1)}/s`;
  cells[6].textContent = describeEta(progress.status, eta);
  cells[7].textContent = progress.counts.failed.toLocaleString();
  cells[7].classList.toggle('failed-count', progress.counts.failed > 0);
  cells[8].textContent = formatTime(progress.startedAt);
  cells[9].textContent = formatTime(progress.updatedAt);
}

function describeEta(status, eta) {
  if (['completed', 'failed', 'cancelled'].includes(status)) return 'done';
  if (eta.etaMs === null) return '–';
  const range = eta.range
    ? ` (${formatDuration(eta.range.lowMs)}–${formatDuration(eta.range.highMs)})`
    : '';
  return `${formatDuration(eta.etaMs)}${range}`;
}

function formatDuration(ms) {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

function formatTime(epochMs) {
  return epochMs === null ? '' : new Date(epochMs).toLocaleString();
}

/** Notes a changed job; changed jobs are refreshed together, at most once per interval. */
function markChanged(jobId) {
  state.dirty.add(jobId);
  if (state.refreshScheduled) return;
  state.refreshScheduled = true;
  const wait = Math.max(0, state.lastRefresh + refreshEveryMs - performance.now());
  setTimeout(() => requestAnimationFrame(refreshChanged), wait);
}

async function refreshChanged() {
  state.refreshScheduled = false;
  state.lastRefresh = performance.now();
  const jobIds = [...state.dirty];
  state.dirty.clear();
  const views = await Promise.all(
    jobIds.map((jobId) => api(`/v1/jobs/${encodeURIComponent(jobId)}`).catch(() => null)),
  );
  for (const view of views) {
    if (view)
      state.jobs.set(view.jobId, { jobId: view.jobId, progress: view.progress, eta: view.eta });
  }
  render();
}

function setConnection(stateName, text) {
  elements.connection.dataset.state = stateName;
  elements.connection.textContent = text;
}

/** Follows /v1/stream for as long as the page is open, reconnecting where it left off. */
async function follow() {
  let lastEventId = null;
  let failures = 0;
  for (;;) {
    try {
      const response = await fetch('/v1/stream', {
        headers: headers(lastEventId ? { 'last-event-id': lastEventId } : {}),
      });
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      if (failures > 0) await loadJobs();
      failures = 0;
      setConnection('live', 'Live');
      const parser = createParser({
        onEvent(message) {
          if (message.event !== 'event') return;
          lastEventId = message.id ?? lastEventId;
          markChanged(JSON.parse(message.data).streamId);
        },
      });
      const decoder = new TextDecoder();
      const reader = response.body.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(decoder.decode(value, { stream: true }));
      }
      throw new Error('the stream ended');
    } catch {
      failures += 1;
      setConnection(
        'down',
        failures > 1 ? 'Server unreachable; retrying…' : 'Connection lost; reconnecting…',
      );
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** failures)));
    }
  }
}

elements.filters.addEventListener('input', (event) => {
  // Search filters what is loaded; the other filters ask the server again.
  if (event.target.name === 'search') render();
  else void loadJobs().catch(() => undefined);
});
elements.filters.addEventListener('submit', (event) => event.preventDefault());
elements.more.addEventListener('click', () => void loadJobs({ more: true }));

void loadJobs().catch((error) => setConnection('down', `Could not load jobs: ${error.message}`));
void follow();
