// The jobs overview's filters: as the address holds them, as the server is asked them, as the
// page checks its own rows against them, and their form.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { hasEnded } from './format.js';

/** Ended jobs stay in the active view this long, as the API keeps them. */
const finishedVisibleMs = 10 * 60_000;
const statuses = ['running', 'paused', 'pending', 'completed', 'failed', 'cancelled'];

/** Filters as the address holds them: ?project=&status=&active=1&stalled=1&q= */
export function filtersFromAddress() {
  const query = new URLSearchParams(location.search);
  return {
    project: query.get('project') ?? '',
    status: query.get('status') ?? '',
    active: query.get('active') === '1',
    stalled: query.get('stalled') === '1',
    search: query.get('q') ?? '',
  };
}

/** The filters as the server is asked them (trimmed), one line each. */
export const asked = (filters) =>
  [
    filters.project.trim(),
    filters.status,
    filters.active,
    filters.stalled,
    filters.search.trim(),
  ].join('\n');

/** Puts the filters in the address, replacing the entry, when they change it. */
export function saveFiltersInAddress(filters) {
  const query = new URLSearchParams();
  if (filters.project.trim()) query.set('project', filters.project.trim());
  if (filters.status) query.set('status', filters.status);
  if (filters.active) query.set('active', '1');
  if (filters.stalled) query.set('stalled', '1');
  if (filters.search.trim()) query.set('q', filters.search.trim());
  const search = query.size > 0 ? `?${query}` : '';
  if (search !== location.search) history.replaceState(history.state, '', `/${search}`);
}

/** The filters as the form holds them, kept as typed. */
export function filtersFromForm(form) {
  return {
    project: String(form.get('project') ?? ''),
    status: String(form.get('status') ?? ''),
    active: form.get('active') === 'on',
    stalled: form.get('stalled') === 'on',
    search: String(form.get('search') ?? ''),
  };
}

/** GET /v1/jobs for one page of jobs under `filters`, from `cursor`. */
export function listQuery(filters, { cursor, limit }) {
  const { status, active, stalled } = filters;
  const project = filters.project.trim();
  const search = filters.search.trim();
  const query = new URLSearchParams({ limit: String(limit) });
  if (project) query.set('project', project);
  if (status) query.set('status', status);
  if (active) query.set('active', 'true');
  if (stalled) query.set('stalled', 'true');
  if (search) query.set('q', search);
  if (cursor) query.set('cursor', cursor);
  return `/v1/jobs?${query}`;
}

/** Whether a job has the searched text, as the server searches it. */
export function searched(filters, { jobId, progress }) {
  const search = filters.search.trim().toLowerCase();
  const text = [jobId, progress.name, progress.kind, progress.project].join(' ');
  return !search || text.toLowerCase().includes(search);
}

/** Whether a job on this page still belongs on it as the filters stand. */
export function matches(filters, { progress, conditions }, now) {
  const { status, active, stalled } = filters;
  const project = filters.project.trim();
  if (project && progress.project !== project) return false;
  if (status && progress.status !== status) return false;
  // As of its latest read: an event clears the condition, and the read after it says so.
  if (stalled && !conditions?.stalled) return false;
  if (active && hasEnded(progress.status)) {
    if (progress.endedAt === null || now - progress.endedAt > finishedVisibleMs) return false;
  }
  return true;
}

/** The filter form, showing `filters`; `onFilter` handles each input. */
export function filtersForm({ project, status, active, stalled, search }, onFilter) {
  return html`<form
    id="filters"
    aria-label="Filter jobs"
    @input=${onFilter}
    @submit=${(event) => event.preventDefault()}
  >
    <label>Project <input name="project" type="text" autocomplete="off" .value=${project} /></label>
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
    <label><input name="stalled" type="checkbox" .checked=${stalled} /> Stalled only</label>
    <label>Search <input name="search" type="search" autocomplete="off" .value=${search} /></label>
  </form>`;
}
