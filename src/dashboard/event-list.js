// A job's events newest first, filtered by the server, paged back by cursor, and topped up
// live: the timeline and the log panels of the job page.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { repeat } from '/dashboard/vendor/lit-html/directives/repeat.js';
import { api } from './api.js';
import { formatTime } from './format.js';
import { refresher } from './scheduling.js';

const pageSize = 50;
/** Most events kept on screen; older ones are a page away again. */
const maxShown = 500;
/** Least time between two reads of new events. */
const newerEveryMs = 500;

/** An event as the list keeps it: its description without the type, its details rendered once. */
function entry(event) {
  const { data, metadata, type, summary } = event;
  return {
    ...event,
    summary: summary.startsWith(type) ? summary.slice(type.length).trim() : summary,
    shownAt: formatTime(Date.parse(event.occurredAt)),
    details: JSON.stringify({ data, metadata, eventId: event.eventId }, null, 2),
  };
}

export class EventList {
  /**
   * `path` is the route (e.g. /v1/jobs/a/timeline); `query(filters)` its filter parameters;
   * `onChange` runs after every change, to redraw.
   */
  constructor({ path, query, filters, onChange, signal }) {
    Object.assign(this, { path, query, filters, onChange, signal });
    this.events = [];
    this.olderCursor = null;
    this.error = null;
    this.loading = false;
    this.loadingOlder = false;
    this.latestLoad = 0;
    this.newer = refresher(() => this.pullNewer(), newerEveryMs);
    signal.addEventListener('abort', () => this.newer.stop());
  }

  url(extra) {
    const query = this.query(this.filters);
    for (const [key, value] of Object.entries(extra)) query.set(key, String(value));
    return `${this.path}?${query}`;
  }

  /** The newest page again, as the filters stand. */
  async reload() {
    const load = (this.latestLoad += 1);
    this.loading = true;
    this.onChange();
    try {
      const page = await api(this.url({ order: 'desc', limit: pageSize }), {
        signal: this.signal,
      });
      if (load !== this.latestLoad) return;
      this.events = page.events.map(entry);
      this.olderCursor = page.nextCursor;
      this.error = null;
    } catch (error) {
      if (load === this.latestLoad && !this.signal.aborted) this.error = error.message;
    } finally {
      if (load === this.latestLoad) this.loading = false;
      if (!this.signal.aborted) this.onChange();
    }
  }

  async loadOlder() {
    const cursor = this.olderCursor;
    if (cursor === null || this.loadingOlder) return;
    this.loadingOlder = true;
    try {
      const page = await api(this.url({ order: 'desc', limit: pageSize, after: cursor }), {
        signal: this.signal,
      });
      // The list moved meanwhile (a reload, or a top-up that trimmed the bottom): this page
      // no longer follows on from what is shown.
      if (cursor !== this.olderCursor) return;
      this.events = [...this.events, ...page.events.map(entry)];
      this.olderCursor = page.nextCursor;
    } catch (error) {
      if (!this.signal.aborted) this.error = error.message;
    } finally {
      this.loadingOlder = false;
      if (!this.signal.aborted) this.onChange();
    }
  }

  setFilters(filters) {
    this.filters = filters;
    void this.reload();
  }

  /** Something was appended to the job: read what is newer than the top, soon. */
  noteAppend() {
    this.newer.request();
  }

  async pullNewer() {
    // A reload on its way brings the newest events itself; top up after it.
    if (this.loading) return this.newer.request();
    const top = this.events[0];
    if (!top) return this.reload();
    const page = await api(this.url({ order: 'asc', limit: maxShown, after: top.position }), {
      signal: this.signal,
    }).catch(() => null);
    // The top changed meanwhile (a reload landed): this answer may repeat what it brought.
    if (this.events[0] !== top) return this.newer.request();
    if (!page || page.events.length === 0) return;
    // Too many to top up: start again from the newest page.
    if (page.nextCursor !== null) return this.reload();
    this.events = [...page.events.map(entry).reverse(), ...this.events];
    if (this.events.length > maxShown) {
      this.events = this.events.slice(0, maxShown);
      this.olderCursor = this.events.at(-1).position;
    }
    this.onChange();
  }

  /** The list, its paging and its state; `label` names it for screen readers. */
  template(label) {
    return html`${this.error ? html`<p class="error" role="alert">${this.error}</p>` : ''}
      <ol class="events" aria-label=${label} aria-busy=${this.loading ? 'true' : 'false'}>
        ${repeat(
          this.events,
          (event) => event.position,
          (event) =>
            html`<li data-type=${event.type} data-position=${event.position}>
              <time datetime=${event.occurredAt}>${event.shownAt}</time>
              <code class="event-type">${event.type}</code>
              <span class="event-summary">${event.summary}</span>
              <details>
                <summary>details</summary>
                <pre>${event.details}</pre>
              </details>
            </li>`,
        )}
      </ol>
      ${!this.loading && this.events.length === 0 ? html`<p class="muted">No events match.</p>` : ''}
      <button
        type="button"
        class="older"
        ?hidden=${this.olderCursor === null}
        ?disabled=${this.loadingOlder}
        @click=${() => void this.loadOlder()}
      >
        Older events
      </button>`;
  }
}
