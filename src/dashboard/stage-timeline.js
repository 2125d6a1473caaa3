// A job's stages as bars on one time axis, the current one growing as time passes.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { formatClock, formatCount, formatDuration } from './format.js';

/** The figures of one stage run: "1m 20s · 1,234 / 2,000 · 12 failed · 3 skipped". */
function runFigures(run, durationMs) {
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
  return parts.join(' · ');
}

/** The stage timeline of a job's progress, as of `now` (epoch ms). */
export function stageTimeline(progress, now) {
  const runs = progress.stages;
  const waiting = progress.declaredStages.filter(
    (declared) => !runs.some((run) => run.name === declared.name),
  );
  if (runs.length === 0 && waiting.length === 0) {
    return html`<p class="muted">This job records no stages.</p>`;
  }
  const weights = new Map(progress.declaredStages.map((stage) => [stage.name, stage.weight]));
  const showWeights = progress.declaredStages.some((stage) => stage.weight !== 1);
  const from = progress.startedAt ?? runs[0]?.startedAt ?? now;
  const to = Math.max(from + 1, progress.endedAt ?? Math.max(now, progress.updatedAt ?? now));
  const span = to - from;
  const share = (ms) => Math.min(100, Math.max(0, (ms / span) * 100));
  const label = (name) =>
    html`<strong>${name}</strong>${
        showWeights && weights.has(name)
          ? html` <span class="muted">weight ${weights.get(name)}</span>`
          : ''
      }`;

  return html`<div class="stage-timeline">
    <div class="stage-axis" aria-hidden="true">
      <span>${formatClock(from)}</span
      ><span>${progress.endedAt === null ? 'now' : formatClock(to)}</span>
    </div>
    <ol class="stages">
      ${runs.map((run) => {
        const current = run.endedAt === null;
        const end = run.endedAt ?? to;
        const left = share(run.startedAt - from);
        const width = Math.max(0.5, Math.min(100 - left, share(end - run.startedAt)));
        return html`<li
          class="stage"
          data-stage=${run.name}
          data-state=${current ? 'current' : 'done'}
        >
          <div class="stage-label">
            ${label(run.name)}${current ? html` <span class="muted">(current)</span>` : ''}
          </div>
          <div class="stage-track" aria-hidden="true">
            <div class="stage-bar" style=${`left: ${left}%; width: ${width}%`}></div>
          </div>
          <div class="stage-figures">${runFigures(run, end - run.startedAt)}</div>
        </li>`;
      })}
      ${waiting.map(
        (stage) =>
          html`<li class="stage" data-stage=${stage.name} data-state="waiting">
            <div class="stage-label">${label(stage.name)}</div>
            <div class="stage-track" aria-hidden="true"></div>
            <div class="stage-figures muted">not started</div>
          </li>`,
      )}
    </ol>
  </div>`;
}
