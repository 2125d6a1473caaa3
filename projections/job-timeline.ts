import { isCustomEvent } from '../schema/recorded-event.ts';
import { classifyRecordedError } from './failure-classification.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';
import type { EventData } from '../schema/events.ts';

const clip = (text: string, length = 160) =>
  text.length <= length ? text : `${text.slice(0, length - 1)}…`;

/**
 * One human line for any event.
 *
 * @example
 * describeEvent(event); // 'item.failed doc-7 [network] read ECONNRESET'
 */
export function describeEvent(event: RecordedEvent): string {
  if (isCustomEvent(event)) return `${event.type} ${clip(JSON.stringify(event.data) ?? '')}`;
  const { type } = event;
  switch (event.type) {
    case 'job.started':
      return `${type} "${event.data.name}" (${event.data.kind}, project ${event.data.project})${event.data.total === undefined ? '' : `, ${event.data.total} items`}`;
    case 'job.scope_changed':
      return `${type} total ${event.data.total}`;
    case 'items.planned':
      return `${type} ${event.data.items.length} items`;
    case 'stage.started':
      return `${type} ${event.data.stage}${event.data.total === undefined ? '' : ` (${event.data.total})`}`;
    case 'item.started':
      return `${type} ${event.data.itemId}${event.data.attempt && event.data.attempt > 1 ? ` attempt ${event.data.attempt}` : ''}`;
    case 'item.completed':
      return `${type} ${event.data.itemId}${event.data.durationMs === undefined ? '' : ` in ${Math.round(event.data.durationMs)} ms`}`;
    case 'item.failed':
      return `${type} ${event.data.itemId} [${classifyRecordedError(event.data.error).category}] ${clip(event.data.error.message)}`;
    case 'item.skipped':
      return `${type} ${event.data.itemId}${event.data.reason ? `: ${clip(event.data.reason)}` : ''}`;
    case 'items.released':
      return `${type} ${event.data.itemIds.length} items: ${clip(event.data.reason)}`;
    case 'progress.reported':
      return `${type}${event.data.processed === undefined ? '' : ` ${event.data.processed}`}${event.data.total === undefined ? '' : `/${event.data.total}`}${event.data.percent === undefined ? '' : ` ${event.data.percent}%`}${event.data.message ? ` ${clip(event.data.message)}` : ''}`;
    case 'checkpoint.saved':
      return `${type} ${clip(JSON.stringify(event.data.cursor) ?? '')}${event.data.note ? ` (${clip(event.data.note)})` : ''}`;
    case 'log.written':
      return `${type} ${event.data.level}: ${clip(event.data.message)}`;
    case 'job.paused':
    case 'job.resumed':
    case 'job.cancelled':
      return `${type}${event.data.reason ? `: ${clip(event.data.reason)}` : ''}`;
    case 'job.completed':
      return `${type}${event.data.result === undefined ? '' : ` ${clip(JSON.stringify(event.data.result) ?? '')}`}`;
    case 'job.failed':
      return `${type} [${classifyRecordedError(event.data.error).category}] ${clip(event.data.error.message)}`;
    case 'condition.raised':
      return `${type} ${event.data.condition}${conditionDetail(event.data)}`;
    case 'condition.cleared':
      return `${type} ${event.data.condition}${event.data.heldMs === undefined ? '' : ` after ${formatSpan(event.data.heldMs)}`}`;
  }
}

/** What a raised condition's detail says, briefly. */
function conditionDetail(data: EventData<'condition.raised'>): string {
  if (data.silentMs !== undefined) {
    const threshold =
      data.thresholdMs === undefined
        ? ''
        : ` (threshold ${formatSpan(data.thresholdMs)}, ${data.basis ?? 'default'})`;
    return `: silent ${formatSpan(data.silentMs)}${threshold}`;
  }
  if (data.overdueMs !== undefined) return `: ${formatSpan(data.overdueMs)} past ${data.deadline}`;
  if (data.expectedBy !== undefined)
    return `: expected by ${data.expectedBy}, deadline ${data.deadline}`;
  if (data.rate !== undefined) {
    return `: ${(data.rate * 100).toFixed(0)}% failing over ${data.outcomes ?? 0} recent outcomes (above ${((data.threshold ?? 0) * 100).toFixed(0)}%)`;
  }
  return '';
}

/** A span as its largest units: 45 s, 12 min, 3 h 5 min. */
function formatSpan(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A timeline row. */
export interface TimelineEntry {
  position: string;
  jobId: string;
  version: number;
  at: string;
  type: string;
  summary: string;
}

/** The timeline row of an event. */
export function timelineEntry(event: RecordedEvent): TimelineEntry {
  return {
    position: event.position.toString(),
    jobId: event.streamId,
    version: event.version,
    at: event.occurredAt.toISOString(),
    type: event.type,
    summary: describeEvent(event),
  };
}
