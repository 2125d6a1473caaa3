// A job's stages as bars on one time axis, the current one growing as time passes.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { formatClock, formatCount, formatDuration } from './format.js';

const bases = {
  measured: 'at its own rate',
  history: 'from earlier jobs',
  weights: 'from the stage weights',
};

/**
 * The figures of one stage run, then the stage's own counts and ETA:
 * "1m 20s · 1,234 / 2,000 · 12 failed · 3 skipped · 4 in flight · 700 pending · ETA 5m".
 */
function runFigures(run, durationMs, stage) {
  const parts = [formatDuration(durationMs)];
  // Results count every attempt's outcome: with retries they may outnumber the items.
  if (run.total === null) parts.push(`${formatCount(run.processed)} done`);
  else if (run.processed <= run.total) {
    parts.push(`${formatCount(run.processed)} / ${formatCount(run.total)}`);
  } else {
    const total = formatCount(run.total);
    parts.push(`${total} / ${total} (${formatCount(run.processed)} results with retries)`);
  }
  if (run.failed > 0) parts.push(`${formatCount(run.failed)} failed`);
  if (run.skipped > 0) parts.push(`${formatCount(run.skipped)} skipped`);
  return [...parts, ...stageCounts(stage)].join(' · ');
}

/** A stage's items in flight and pending, and its own ETA with the basis it used. */
function stageCounts(stage) {
  if (!stage) return [];
  const parts = [];
  if (stage.inFlight > 0) parts.push(`${formatCount(stage.inFlight)} in flight`);
  if (stage.pending) parts.push(`${formatCount(stage.pending)} pending`);
  if (stage.etaMs > 0 && bases[stage.basis]) {
    parts.push(`ETA ${formatDuration(stage.etaMs)} ${bases[stage.basis]}`);
  }
  return parts;
}

/**
 * The stage timeline of a job's progress, as of `now` (epoch ms), with each stage's counts
 * from the ETA's `stages`. A stage that only item events name has no run of its own: its
 * bar goes from its first event to its last outcome.
 */
export function stageTimeline(progress, now, stageEstimates = []) {
  const estimateOf = new Map(stageEstimates.map((stage) => [stage.name, stage]));
  const runs = stageRuns(progress, stageEstimates);
  const lastRun = new Map(runs.map((run) => [run.name, run]));
  const waiting = progress.declaredStages.filter(
    (declared) => !runs.some((run) => run.name === declared.name),
  );
  if (runs.length === 0 && waiting.length === 0) {
    return html`<p class="muted">This job records no stages.</p>`;
  }
  const label = stageLabel(progress.declaredStages);
  const from = progress.startedAt ?? runs[0]?.startedAt ?? now;
  const to = Math.max(from + 1, progress.endedAt ?? Math.max(now, progress.updatedAt ?? now));
  const axis = { from, to, span: to - from };
  // Only a stage's last run carries the stage's own counts and ETA.
  const estimateFor = (run) =>
    lastRun.get(run.name) === run ? estimateOf.get(run.name) : undefined;

  return html`<div class="stage-timeline">
    <div class="stage-axis" aria-hidden="true">
      <span>${formatClock(from)}</span
      ><span>${progress.endedAt === null ? 'now' : formatClock(to)}</span>
    </div>
    <ol class="stages">
      ${runs.map((run) => runItem(run, axis, label, estimateFor(run)))}
      ${waiting.map(
        (stage) =>
          html`<li class="stage" data-stage=${stage.name} data-state="waiting">
            <div class="stage-label">${label(stage.name)}</div>
            <div class="stage-track" aria-hidden="true"></div>
            <div class="stage-figures muted">
              ${['not started', ...stageCounts(estimateOf.get(stage.name))].join(' · ')}
            </div>
          </li>`,
      )}
    </ol>
  </div>`;
}

/**
 * The job's stage runs in time order, with a run made up for each stage that only item
 * events name, from its first event to its last outcome.
 */
function stageRuns(progress, stageEstimates) {
  const tallyOf = new Map((progress.stageTallies ?? []).map((tally) => [tally.name, tally]));
  const runs = [...progress.stages];
  for (const stage of stageEstimates) {
    const tally = tallyOf.get(stage.name);
    if (runs.some((run) => run.name === stage.name) || !tally || tally.firstAt === null) continue;
    const done = stage.completed + stage.failed + stage.skipped;
    runs.push({
      name: stage.name,
      startedAt: tally.firstAt,
      endedAt:
        stage.status === 'done' || progress.endedAt !== null
          ? (tally.lastAt ?? tally.firstAt)
          : null,
      total: stage.total,
      processed: done,
      failed: stage.failed,
      skipped: stage.skipped,
    });
  }
  // The last run of a stage carries its counts; a stage's runs keep their order in time.
  runs.sort((a, b) => a.startedAt - b.startedAt);
  return runs;
}

/** A function that labels a stage by name, with its weight when any weight is not 1. */
function stageLabel(declaredStages) {
  const weights = new Map(declaredStages.map((stage) => [stage.name, stage.weight]));
  const showWeights = declaredStages.some((stage) => stage.weight !== 1);
  return (name) =>
    html`<strong>${name}</strong>${
        showWeights && weights.has(name)
          ? html` <span class="muted">weight ${weights.get(name)}</span>`
          : ''
      }`;
}

/** One stage run as a bar on the axis `{ from, to, span }`, with its figures. */
function runItem(run, { from, to, span }, label, estimate) {
  const share = (ms) => Math.min(100, Math.max(0, (ms / span) * 100));
  const current = run.endedAt === null;
  const end = run.endedAt ?? to;
  const left = share(run.startedAt - from);
  const width = Math.max(0.5, Math.min(100 - left, share(end - run.startedAt)));
  return html`<li class="stage" data-stage=${run.name} data-state=${current ? 'current' : 'done'}>
    <div class="stage-label">
      ${label(run.name)}${current ? html` <span class="muted">(current)</span>` : ''}
    </div>
    <div class="stage-track" aria-hidden="true">
      <div class="stage-bar" style=${`left: ${left}%; width: ${width}%`}></div>
    </div>
    <div class="stage-figures">${runFigures(run, end - run.startedAt, estimate)}</div>
  </li>`;
}
