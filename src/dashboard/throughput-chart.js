// A job's processed count and rate over time (uPlot), with the ETA drawn ahead: the expected
// line to the total, and the band between the fastest and the slowest finish of its range.
import uPlot from '/dashboard/vendor/uplot/uPlot.esm.js';

const height = 240;

/** A straight line through (x0, y0) and (x1, y1), read at x. */
const along = (x0, y0, x1, y1, x) => (x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0));

/**
 * The chart's columns from GET /v1/jobs/:id/throughput: time (s), processed, rate (items/s),
 * and the expected, fastest and slowest projections to the total.
 */
function chartColumns({ points, eta, now }, ended) {
  /** x (ms) -> row; rows at one time merge. */
  const rows = new Map();
  const row = (at) => {
    let found = rows.get(at);
    if (!found) rows.set(at, (found = { at }));
    return found;
  };
  points.forEach((point, index) => {
    const entry = row(point.at);
    entry.processed = point.processed;
    const before = points[index - 1];
    if (before && point.at > before.at) {
      entry.rate = ((point.processed - before.processed) * 1_000) / (point.at - before.at);
    }
  });
  const last = points.at(-1);
  if (!ended && (!last || now > last.at)) row(now).processed = eta.processed;
  if (!ended && eta.etaMs !== null && eta.range && eta.total !== null) {
    const start = Math.max(now, last?.at ?? now);
    const [from, total] = [eta.processed, eta.total];
    const finish = start + eta.etaMs;
    const fastest = start + eta.range.lowMs;
    const slowest = start + eta.range.highMs;
    for (const at of [start, fastest, finish, slowest]) {
      const entry = row(at);
      entry.projected = at >= finish ? total : along(start, from, finish, total, at);
      entry.fast = at >= fastest ? total : along(start, from, fastest, total, at);
      entry.slow = at >= slowest ? total : along(start, from, slowest, total, at);
    }
  }
  const sorted = [...rows.values()].sort((a, b) => a.at - b.at);
  const column = (key) => sorted.map((entry) => entry[key] ?? null);
  return [
    sorted.map((entry) => entry.at / 1_000),
    column('processed'),
    column('rate'),
    column('projected'),
    column('fast'),
    column('slow'),
  ];
}

function colours(element) {
  const style = getComputedStyle(element);
  const read = (name) => style.getPropertyValue(name).trim();
  return {
    fg: read('--fg'),
    muted: read('--muted'),
    line: read('--line'),
    accent: read('--accent'),
    good: read('--good'),
    band: read('--band'),
  };
}

/** A chart in `element`; `update` redraws it with new figures. */
export class ThroughputChart {
  constructor(element) {
    this.element = element;
    this.plot = null;
    this.resize = new ResizeObserver(() => {
      if (this.plot) this.plot.setSize({ width: this.width(), height });
    });
    this.resize.observe(element);
  }

  width() {
    return Math.max(200, this.element.clientWidth);
  }

  /** Draws the figures of GET /v1/jobs/:id/throughput; `ended` leaves out the projection. */
  update(throughput, ended) {
    const data = chartColumns(throughput, ended);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const colour = colours(this.element);
    const axis = {
      stroke: colour.muted,
      grid: { stroke: colour.line },
      ticks: { stroke: colour.line },
    };
    this.plot = new uPlot(
      {
        width: this.width(),
        height,
        scales: { x: { time: true }, items: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        series: [
          {},
          {
            label: 'Processed',
            scale: 'items',
            stroke: colour.accent,
            width: 2,
            points: { show: false },
          },
          {
            label: 'Rate (items/s)',
            scale: 'rate',
            stroke: colour.good,
            paths: uPlot.paths.stepped({ align: -1 }),
            points: { show: false },
            value: (_u, value) => (value === null ? '–' : value.toFixed(1)),
          },
          {
            label: 'Expected',
            scale: 'items',
            stroke: colour.accent,
            dash: [6, 4],
            spanGaps: true,
          },
          { label: 'Fastest', scale: 'items', stroke: colour.muted, dash: [2, 4], spanGaps: true },
          { label: 'Slowest', scale: 'items', stroke: colour.muted, dash: [2, 4], spanGaps: true },
        ],
        bands: [{ series: [4, 5], fill: colour.band }],
        axes: [
          axis,
          { ...axis, scale: 'items', label: 'items' },
          { ...axis, scale: 'rate', side: 1, label: 'items/s', grid: { show: false } },
        ],
        legend: { live: true },
      },
      data,
      this.element,
    );
  }

  destroy() {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }
}
