// A job's conditions as badges: stalled, at risk of missing its deadline, late, failing too
// often. The server judges them at each read; between reads the silent and overdue times
// count on from the read.
import { html } from '/dashboard/vendor/lit-html/lit-html.js';
import { formatCount, formatDuration, formatTime } from './format.js';

/** Where a stall threshold came from, as a title says it. */
const stallBases = {
  job: "the job's own threshold",
  learned: "a threshold learned from the job's pace",
  default: 'the default threshold',
};

/** Where a failure rate threshold came from, as a title says it. */
const failureBases = { job: "the job's own threshold", default: 'the default threshold' };

const wholePercent = (rate) => `${Math.round(rate * 100)}%`;

/** One badge: `name` is the API's name of the condition, kept as a hook. */
const badge = (name, text, title) =>
  html`<span class=${`badge condition condition-${name}`} data-condition=${name} title=${title}
    >${text}</span
  >`;

/** True when a shown condition counts on between reads (its badge says how long). */
export const conditionsTick = (conditions) =>
  Boolean(conditions && (conditions.stalled || conditions.late));

/**
 * The badges of a job's `conditions` (as the API sends them; none when null), `sinceMs` after
 * they were read.
 */
export function conditionBadges(conditions, sinceMs = 0) {
  if (!conditions) return '';
  const { stalled, atRisk, late, failureRate } = conditions;
  const badges = [];
  if (stalled) {
    badges.push(
      badge(
        'stalled',
        `stalled · silent ${formatDuration(stalled.silentMs + sinceMs)}`,
        `No event for longer than ${formatDuration(stalled.thresholdMs)}, ` +
          `${stallBases[stalled.basis] ?? 'the threshold'}; ` +
          `last event at ${formatTime(stalled.lastEventAt)}`,
      ),
    );
  }
  if (atRisk) {
    badges.push(
      badge(
        'at_risk',
        'at risk',
        `Expected by ${formatTime(atRisk.expectedBy)} (the slow end of its ETA range), ` +
          `past its deadline ${formatTime(atRisk.deadline)}`,
      ),
    );
  }
  if (late) {
    badges.push(
      badge(
        'late',
        `late · ${formatDuration(late.overdueMs + sinceMs)} overdue`,
        `Its deadline was ${formatTime(late.deadline)}`,
      ),
    );
  }
  if (failureRate) {
    badges.push(
      badge(
        'failure_rate',
        `failing ${wholePercent(failureRate.rate)}`,
        `${wholePercent(failureRate.rate)} of its recent outcomes failed, over ` +
          `${wholePercent(failureRate.threshold)} (${failureBases[failureRate.basis] ?? 'the threshold'}); ` +
          `${formatCount(failureRate.outcomes)} outcomes so far`,
      ),
    );
  }
  // A space before them, so status and conditions read as words apart.
  return badges.length === 0 ? '' : html` <span class="conditions">${badges}</span>`;
}
