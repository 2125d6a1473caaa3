import type { FailureError } from '../schema/events.ts';
import { classifyRecordedError } from './failure-classification.ts';
import { isCustomEvent } from '../schema/recorded-event.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import { draftedFold } from './drafted-fold.ts';
import { emptyItemTable, itemEntries } from './item-table.ts';
import type { ItemTable, ItemWriter } from './item-table.ts';
import type { Projection } from './projection.ts';
import { own, setOwn } from './own.ts';

/** Failures that share a category and a normalised message. */
export interface FailureGroup {
  /** `category: normalised message`. */
  key: string;
  category: string;
  message: string;
  /** One original message of the group. */
  sample: string;
  /** The error of that message as recorded: code, stage, file and stack when given. */
  sampleError: FailureError;
  /** Failure events in the group (an item failing twice counts twice). */
  count: number;
  /** Of those, the ones classified as retryable. */
  retryable: number;
  /** The first item ids of the group, at most `groupItemLimit`. */
  itemIds: string[];
  firstSeen: number;
  lastSeen: number;
}

/** The latest outcome of an item that has failed at least once. */
interface FailedItem {
  failing: boolean;
  retryable: boolean;
  category: string;
  message: string;
}

/** One job's failures. */
export interface JobFailuresState {
  version: number;
  groups: Record<string, FailureGroup>;
  byCategory: Record<string, number>;
  items: ItemTable<FailedItem>;
}

/** Item ids kept per group. */
export const groupItemLimit = 100;

/**
 * Replaces the parts of a message that vary between otherwise equal failures (ids,
 * numbers, URLs, paths, quoted values) with placeholders, so they group together.
 *
 * @example
 * normaliseMessage('GET https://x.org/a/12 failed after 3000 ms'); // 'GET <url> failed after <n> ms'
 */
export function normaliseMessage(message: string): string {
  return message
    .slice(0, 500)
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, '<url>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/"[^"]*"|'[^']*'|`[^`]*`/g, '<str>')
    .replace(/(?:[A-Za-z]:)?(?:[\\/][\w.-]+){2,}[\\/]?/g, '<path>')
    .replace(/\b(?:0x[0-9a-f]+|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,})\b/gi, '<hex>')
    .replace(/\d+/g, '<n>')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Counts a failure in its group and category; groups are replaced, never changed in place. */
function recordFailure(
  draft: JobFailuresState,
  itemId: string | null,
  error: FailureError,
  { category, retryable }: { category: string; retryable: boolean },
  at: number,
): void {
  const message = normaliseMessage(error.message);
  const key = `${category}: ${message}`;
  const group = own(draft.groups, key);
  const itemIds = group?.itemIds ?? [];
  const next: FailureGroup = group
    ? {
        ...group,
        count: group.count + 1,
        retryable: group.retryable + (retryable ? 1 : 0),
        itemIds:
          itemId !== null && itemIds.length < groupItemLimit && !itemIds.includes(itemId)
            ? [...itemIds, itemId]
            : itemIds,
        lastSeen: Math.max(group.lastSeen, at),
      }
    : {
        key,
        category,
        message,
        sample: error.message,
        sampleError: error,
        count: 1,
        retryable: retryable ? 1 : 0,
        itemIds: itemId === null ? [] : [itemId],
        firstSeen: at,
        lastSeen: at,
      };
  setOwn(draft.groups, key, next);
  setOwn(draft.byCategory, category, (own(draft.byCategory, category) ?? 0) + 1);
}

/** A copy whose maps `apply` may change; groups and item entries are shared, as it replaces them. */
function draftOf(state: JobFailuresState): JobFailuresState {
  return { ...state, groups: { ...state.groups }, byCategory: { ...state.byCategory } };
}

/** Applies one event to a draft in place, for `evolve` and the accumulator alike. */
function apply(draft: JobFailuresState, items: ItemWriter<FailedItem>, event: RecordedEvent): void {
  if (isCustomEvent(event)) return;
  switch (event.type) {
    case 'item.failed': {
      const { itemId, error } = event.data;
      const classification = classifyRecordedError(error);
      const { category, retryable } = classification;
      recordFailure(draft, itemId, error, classification, event.occurredAt.getTime());
      items.set(itemId, { failing: true, retryable, category, message: error.message });
      return;
    }
    case 'item.completed':
    case 'item.skipped': {
      // An item that later succeeds (or is skipped) is no retry candidate.
      const known = items.get(event.data.itemId);
      if (known?.failing) items.set(event.data.itemId, { ...known, failing: false });
      return;
    }
    case 'job.failed': {
      const classification = classifyRecordedError(event.data.error);
      recordFailure(draft, null, event.data.error, classification, event.occurredAt.getTime());
      return;
    }
    case 'job.started':
    case 'job.scope_changed':
    case 'items.planned':
    case 'stage.started':
    case 'item.started':
    case 'items.released':
    case 'progress.reported':
    case 'checkpoint.saved':
    case 'log.written':
    case 'job.paused':
    case 'job.resumed':
    case 'job.completed':
    case 'job.cancelled':
    case 'condition.raised':
    case 'condition.cleared':
      return;
  }
}

/** Failures grouped by category and normalised message, and the items worth retrying. */
export const jobFailures: Projection<JobFailuresState> = {
  name: 'job-failures',
  version: 2,
  initial: () => ({ version: 0, groups: {}, byCategory: {}, items: emptyItemTable() }),
  ...draftedFold({ draftOf, apply }),
};

/** Groups, largest first. */
export function failureGroups(state: JobFailuresState): FailureGroup[] {
  return Object.values(state.groups).sort(
    (a, b) => b.count - a.count || a.key.localeCompare(b.key),
  );
}

/** A retry candidate: an item whose latest outcome is a retryable failure. */
export interface RetryCandidate {
  itemId: string;
  category: string;
  message: string;
}

/** Items whose latest outcome is a retryable failure, by item id. */
export function retryCandidates(state: JobFailuresState): RetryCandidate[] {
  const candidates: RetryCandidate[] = [];
  for (const [itemId, item] of itemEntries(state.items)) {
    if (item.failing && item.retryable)
      candidates.push({ itemId, category: item.category, message: item.message });
  }
  return candidates.sort((a, b) => a.itemId.localeCompare(b.itemId));
}

/** The failure report of one job, as written by `headway failures --export`. */
export interface FailureReport {
  jobId: string;
  generatedAt: string;
  totalFailures: number;
  byCategory: Record<string, number>;
  groups: FailureGroup[];
  retryCandidates: RetryCandidate[];
}

/** Builds the failure report; `generatedAt` is passed in, as projections read no clock. */
export function exportFailures(
  state: JobFailuresState,
  jobId: string,
  generatedAt: string,
): FailureReport {
  const groups = failureGroups(state);
  return {
    jobId,
    generatedAt,
    totalFailures: groups.reduce((sum, group) => sum + group.count, 0),
    byCategory: state.byCategory,
    groups,
    retryCandidates: retryCandidates(state),
  };
}
