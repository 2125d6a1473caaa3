import { isCustomEvent } from '../schema/recorded-event.ts';
import { classifyRecordedError } from './failure-classification.ts';
import type { RecordedEvent } from '../schema/recorded-event.ts';

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
  }
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
