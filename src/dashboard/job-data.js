// What the job page knows of its job: the reads of the job's routes, its timeline and log, and
// which reads each event of the job's stream makes stale.
import { api, download, followStream } from './api.js';
import { EventList } from './event-list.js';
import { hasEnded } from './format.js';
import { stamped } from './job-table.js';
import { refresher } from './scheduling.js';

/** Items started without a lease count as stuck after this long in flight. */
export const defaultLeaseMs = 5 * 60_000;
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

/**
 * The job's state and the reads that fill it; `draw` redraws after each, and `onThroughput`
 * takes each throughput read (for the chart).
 */
export function jobData({ jobId, signal, draw, onThroughput }) {
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
      onThroughput(throughput);
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
  const { timeline, logs } = eventLists(base, draw, signal);

  /** Fetches the failures export as a file; a failure shows on the page. */
  async function downloadFailures() {
    try {
      await download(`${base}/failures?format=export`, `${jobId}-failures.json`);
      state.downloadError = null;
    } catch (error) {
      state.downloadError = `Could not download the export: ${error.message}`;
    }
    draw();
  }

  return { base, state, reads, timeline, logs, downloadFailures };
}

/** The job's timeline and log, each an event list that the server filters. */
function eventLists(base, draw, signal) {
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
  return { timeline, logs };
}

/**
 * Keeps `data` live: follows the job's event stream, redraws every second and rereads the
 * stuck items as leases run out, until `signal` aborts; then `onStop` runs last.
 */
export function followJob({ base, state, reads, timeline, logs }, { signal, draw, onStop }) {
  function readAll() {
    for (const read of Object.values(reads)) read.request();
    void timeline.reload();
    void logs.reload();
  }

  // Each event makes stale only the reads it can change.
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
  // The current stage grows and the ETA counts down between events; leases run out, and a
  // silent job turns stalled or late with no event to say so: its status is read again.
  const ticker = setInterval(draw, 1_000);
  const leases = setInterval(() => {
    if (hasEnded(state.status?.progress.status)) return;
    reads.stuck.request();
    reads.status.request();
  }, 15_000);
  signal.addEventListener('abort', () => {
    clearInterval(ticker);
    clearInterval(leases);
    for (const read of Object.values(reads)) read.stop();
    onStop();
  });
}
